package FoxGov::Test::Gateway;

# One governed gateway for a test: real keys, a real signed bundle, real
# nginx with the module (FoxGov::Test::Nginx), and the mock providers and
# tools (FoxGov::Test::Upstream) behind it, with the evidence records the
# module writes read back from its error log.  The POD at the end says how
# to use it.

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Fixtures qw(:all);
use FoxGov::Test::Nginx qw(http_status http_header http_body);
use FoxGov::Test::Upstream;

our @EXPORT_OK = qw(standard_policy parse_response throttle_window);

my $JSON = JSON::PP->new->utf8->canonical;

# The policy most tests run against.
sub standard_policy {
    return {
        default => 'DENY',
        rules   => [
            { id => 'allow-models', match => { kind => 'model',
                model => { in => [ 'gpt-4o-2024-08-06', 'gpt-4o-mini',
                    'gpt-4o', 'claude-3-5-sonnet-20241022',
                    'text-embedding-3-small', 'my-deployment' ] } },
              decision => 'ALLOW' },
            { id => 'deny-big-completions', match => { kind => 'model',
                'body:/max_tokens' => { gt => 4096 } },
              decision => 'DENY' },
            { id => 'allow-snow-read', match => {
                tool => 'servicenow.incident', action => 'read' },
              decision => 'ALLOW' },
            { id => 'hitl-snow-write', match => {
                tool => 'servicenow.incident', action => 'write' },
              decision => 'REQUIRE_HITL' },
            { id => 'allow-slack', match => { tool => 'slack.chat' },
              decision => 'ALLOW' },
            { id => 'allow-github', match => { tool => 'github.repo' },
              decision => 'ALLOW' },
            # asks every caller whose token has not the MFA acr
            { id => 'step-up-github', match => { tool => 'github.repo',
                acr => { not_in => [ 'urn:foxgov:acr:mfa' ] } },
              decision => 'REQUIRE_STEP_UP',
              acr_values => 'urn:foxgov:acr:mfa' },
            { id => 'throttle-ws', match => { workspace_id => 'ws-throttle' },
              decision => 'THROTTLE',
              limits => { requests => 4, window_seconds => 3600 } },
            { id => 'route-eu', match => { tenant_id => { glob => '*-eu' } },
              decision => 'ROUTE', route => 'eu' },
        ],
    };
}

# A THROTTLE window_seconds of at least $min whose current window has at
# least $left seconds to run.  Windows are aligned to the epoch (a window
# starts at now - now % window_seconds), so a test whose counters must not
# be reset under it picks its window with this instead of waiting for a
# new one.  The loop ends: once the window is longer than now + $left, the
# current window is the first one.
sub throttle_window {
    my ($min, $left) = @_;
    die "throttle_window: \$left must be less than \$min\n"
        unless $left < $min;
    my $now = int time();
    my $w = $min;
    $w++ while $w - $now % $w < $left;
    return $w;
}

sub new {
    my ($class, %opts) = @_;

    my $t = FoxGov::Test::Nginx->new(timeout => $opts{timeout});
    my $d = $t->testdir();

    my $self = bless {
        t    => $t,
        dir  => $d,
        opts => \%opts,
    }, $class;

    make_path("$d/keys", "$d/creds");

    ($self->{auth_pem}, $self->{auth_jwks})
        = keygen("$d/keys", 'caller', 'EdDSA');
    ($self->{bundle_pem}, $self->{bundle_jwks})
        = keygen("$d/keys", 'bundler', 'EdDSA');
    ($self->{approver_pem}, $self->{approver_jwks})
        = keygen("$d/keys", 'approver', 'EdDSA');

    $self->{upstream} = FoxGov::Test::Upstream->new(
        port => $t->port(8081), log => "$d/upstream.log");
    $self->{upstream2} = FoxGov::Test::Upstream->new(
        port => $t->port(8082), log => "$d/upstream2.log",
        keys => { openai => 'sk-openai-eu-test' });

    my $keys = $self->{upstream}->credentials;
    for my $k (keys %$keys) {
        $t->write_file("creds/$k", "$keys->{$k}\n");
    }
    $t->write_file("creds/eu-openai", "sk-openai-eu-test\n");

    $self->write_bundle($opts{policy} // standard_policy(),
        prices => $opts{prices}, revision => $opts{revision} // 'r1');

    return $self;
}

sub nginx    { return $_[0]{t} }
sub dir      { return $_[0]{dir} }
sub upstream { return $_[0]{upstream} }
sub upstream2 { return $_[0]{upstream2} }
sub bundle_path { return "$_[0]{dir}/bundle.tar.gz" }

# (Re)write the signed bundle at bundle_path, atomically (rename).
sub write_bundle {
    my ($self, $policy, %o) = @_;

    my $n = ++$self->{bundles};
    my $out = build_bundle(dir => "$self->{dir}/bundle-src-$n",
        policy => $policy, prices => $o{prices},
        revision => $o{revision} // "r$n",
        key => $o{key} // $self->{bundle_pem}, tar => 1,
        out => "$self->{dir}/bundle-$n.tar.gz",
        (exists $o{compile} ? (compile => $o{compile}) : ()));

    rename $out, $self->bundle_path or die "rename $out: $!";

    return $self->bundle_path;
}

sub config {
    my ($self) = @_;

    my $o = $self->{opts};
    my $d = $self->{dir};
    my $ttl = $o->{ttl} // '600s';
    my $check = $o->{check} // '10s';
    my $trace = $o->{trace} // 'ingress';
    my $body_max = $o->{body_max} // '64k';

    return <<"EOF";
    foxgov_policy_bundle $d/bundle.tar.gz keys=$self->{bundle_jwks}
                         ttl=$ttl check=$check;
    foxgov_auth_keys $self->{auth_jwks};
    foxgov_approval_keys $self->{approver_jwks} ttl=1h;
    foxgov_trace $trace;
    foxgov_body_max $body_max;
    @{[ $o->{http_config} // '' ]}

    map \$foxgov_route \$fg_upstream {
        default 127.0.0.1:%%PORT_8081%%;
        eu      127.0.0.1:%%PORT_8082%%;
    }

    log_format foxgov '\$pid \$status \$foxgov_decision \$foxgov_tenant '
                      '\$foxgov_execution_id \$foxgov_trace_id '
                      '\$foxgov_route';

    server {
        listen 127.0.0.1:%%PORT_8080%% @{[ $o->{listen} // '' ]};
        server_name localhost;

        access_log $d/gateway.log foxgov;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout @{[ $o->{read_timeout} // '10s' ]};

        location /v1/ {
            foxgov_call model openai;
            foxgov_credential openai file=$d/creds/openai_default;
            foxgov_credential openai-eu file=$d/creds/eu-openai
                              tenant=acme-eu;
            proxy_pass http://\$fg_upstream;
        }

        location /iso/ {
            rewrite ^/iso(/.*)\$ \$1 break;
            foxgov_call model openai;
            foxgov_credential acme-only file=$d/creds/openai tenant=acme;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /openai/ {
            foxgov_call model azure_openai;
            foxgov_credential azure file=$d/creds/azure_openai;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /anthropic/ {
            rewrite ^/anthropic(/.*)\$ \$1 break;
            foxgov_call model anthropic;
            foxgov_credential anthropic file=$d/creds/anthropic;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /api/now/table/incident {
            error_page 418 = \@snow_write;
            if (\$request_method != GET) {
                return 418;
            }
            foxgov_call tool servicenow.incident action=read risk=low;
            foxgov_credential servicenow file=$d/creds/servicenow;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location \@snow_write {
            foxgov_call tool servicenow.incident action=write risk=high
                        schema=$d/snow-write.schema.json;
            foxgov_credential servicenow file=$d/creds/servicenow;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /api/chat.postMessage {
            foxgov_call tool slack.chat action=write;
            foxgov_credential slack file=$d/creds/slack;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /github/ {
            foxgov_call tool github.repo action=write;
            proxy_pass http://127.0.0.1:%%PORT_8081%%/mock/echo;
        }

        location /plain/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/mock/health;
        }

        @{[ $o->{config} // '' ]}
    }
EOF
}

sub snow_schema {
    return {
        '$schema' => 'https://json-schema.org/draft/2020-12/schema',
        type => 'object',
        additionalProperties => JSON::PP::false,
        properties => {
            category => { type => 'string', maxLength => 40 },
            priority => { type => 'string', enum => [ '1', '2', '3', '4',
                '5' ] },
            assignment_group => { type => 'string', maxLength => 80 },
            work_notes => { type => 'string', maxLength => 4000 },
            state => { type => 'string' },
        },
    };
}

# Send the gateway's evidence to Redis at $addr (before start): a spool
# directory (under the test dir unless spool => DIR), writable by the
# workers' user, and foxgov_redis / foxgov_spool in http{}, with the extra
# parameters redis => '...' and spool_args => '...'.  Returns the spool
# directory.
sub with_redis {
    my ($self, $addr, %o) = @_;

    my $spool = $o{spool} // "$self->{dir}/spool";
    make_path($spool);
    if ($> == 0) {
        # as root the workers run as nobody, who writes the spool
        my $uid = getpwnam('nobody');
        chown $uid, -1, $spool, glob("$spool/*") if defined $uid;
    }

    $self->{opts}{http_config} = ($self->{opts}{http_config} // '')
        . "    foxgov_redis $addr" . ($o{redis} ? " $o{redis}" : '') . ";\n"
        . "    foxgov_spool $spool"
        . ($o{spool_args} ? " $o{spool_args}" : '') . ";\n";

    return $spool;
}

# The worker processes of the running master (its children that are not
# zombies), from /proc.
sub workers {
    my ($self) = @_;

    my $master = $self->{t}->read_file('nginx.pid') =~ s/\s+//gr;
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($state, $ppid) = $line =~ /\) (\S) (\d+) / or next;
        push @w, $stat =~ m{^/proc/(\d+)/}
            if $ppid eq $master && $state ne 'Z';
    }
    return sort { $a <=> $b } @w;
}

# Start the upstreams and nginx.
sub start {
    my ($self) = @_;

    my $t = $self->{t};
    my $o = $self->{opts};

    $t->write_file('snow-write.schema.json', $JSON->encode(snow_schema()));
    $t->write_file('creds/openai_default', "sk-openai-test\n");

    $self->{upstream}->start;
    $self->{upstream2}->start;

    $t->write_config($self->config,
        main => "worker_processes @{[ $o->{workers} // 1 ]};\n"
              . ($o->{main_config} // ''),
        ($o->{events} ? (events => $o->{events}) : ()));
    $t->run();

    return $self;
}

sub stop {
    my ($self) = @_;
    my $rc = $self->{t}->stop();
    $self->{upstream}->stop;
    $self->{upstream2}->stop;
    return $rc;
}

# A caller token from the gateway's auth key.
sub token {
    my ($self, %o) = @_;
    return mint_token(key => $self->{auth_pem}, tenant => 'acme',
        caps => [ 'model:*', 'tool:*' ], %o);
}

sub approval {
    my ($self, $request, %o) = @_;
    return approve(key => $self->{approver_pem}, request => $request, %o);
}

# Send one request; returns a hashref {status, headers, body, json, raw}.
# %o: headers => [name => value, ...], body => string or ref (JSON),
# token => string (sent as Authorization: Bearer), timeout.
sub request {
    my ($self, $method, $path, %o) = @_;

    my @h = @{ $o{headers} // [] };
    my $body = $o{body};
    $body = $JSON->encode($body) if ref $body;

    push @h, 'Authorization' => "Bearer $o{token}" if defined $o{token};
    push @h, 'Content-Type' => 'application/json'
        if defined $body && !grep { lc $_ eq 'content-type' } @h;

    my $raw = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        $raw .= "$h[$i]: $h[$i + 1]\r\n";
    }
    $raw .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    $raw .= "\r\n";
    $raw .= $body if defined $body;

    my $resp = $self->{t}->http($raw, timeout => $o{timeout} // 10);

    return parse_response($resp);
}

sub parse_response {
    my ($resp) = @_;

    my %r = (raw => $resp // '', status => http_status($resp));
    my ($head, $body) = split /\r\n\r\n/, $resp // '', 2;
    my %h;
    for my $line (split /\r\n/, $head // '') {
        next unless $line =~ /^([^:]+):\s*(.*)$/;
        push @{ $h{lc $1} }, $2;
    }
    $r{headers} = { map { $_ => join(', ', @{ $h{$_} }) } keys %h };

    $body //= '';
    if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($body, 0, $n, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }
    $r{body} = $body;
    $r{json} = eval { $JSON->decode($body) };

    return \%r;
}

# The evidence records written so far: a list of {execution_id, type,
# hash, canonical, record}, in the order the last part of each was logged.
# The error log is read on from where the last call stopped (a debug log
# under load grows by megabytes a second).
sub records {
    my ($self) = @_;

    my $path = "$self->{dir}/error.log";
    open my $fh, '<:raw', $path or return @{ $self->{recs} // [] };
    seek $fh, $self->{log_off} // 0, 0;

    my $parts = $self->{parts} //= {};
    my $recs = $self->{recs} //= [];

    while (my $line = <$fh>) {
        if (substr($line, -1) ne "\n") {
            last;                       # a line still being written
        }
        $self->{log_off} = tell $fh;

        next unless index($line, 'foxgov evidence ') >= 0;
        next unless $line =~ /foxgov evidence (\S+) (\S+) ([0-9a-f]{64}) (\d+)\/(\d+) (\d+) /g;

        my ($exec, $type, $hash, $i, $n, $len) = ($1, $2, $3, $4, $5, $6);
        my $key = "$exec $type $hash";
        $parts->{$key}[$i - 1] = substr($line, pos($line), $len);
        next unless $i == $n;

        my $canon = join '', map { $_ // '' } @{ $parts->{$key} }[0 .. $n - 1];
        delete $parts->{$key};
        push @$recs, {
            execution_id => $exec, type => $type, hash => $hash,
            canonical => $canon,
            record => eval { $JSON->decode($canon) },
        };
    }

    close $fh;

    return @$recs;
}

sub records_for {
    my ($self, $exec) = @_;
    return grep { $_->{execution_id} eq $exec } $self->records;
}

# Wait until the call record of $exec is written (the log phase runs after
# the response was sent).
sub wait_call_record {
    my ($self, $exec, $timeout) = @_;
    my $deadline = time() + ($timeout // 5);
    while (time() < $deadline) {
        my @r = grep { $_->{type} =~ /CallRecord$/ } $self->records_for($exec);
        return $r[0] if @r;
        sleep 0.05;
    }
    return undef;
}

1;

__END__

=head1 NAME

FoxGov::Test::Gateway - a governed gateway with mock upstreams for a test

=head1 SYNOPSIS

    my $g = FoxGov::Test::Gateway->new(policy => standard_policy());
    $g->start;
    my $r = $g->request(POST => '/v1/chat/completions', token => $g->token,
        body => { model => 'gpt-4o', messages => [...] });
    is($r->{status}, 200);
    my @recs = $g->records_for($r->{headers}{'foxgov-execution-id'});
    $g->stop;

=head1 DESCRIPTION

C<new(%opts)> makes caller, bundle and approver keys (EdDSA), a signed
bundle (C<policy>, C<prices>, C<revision>) at C<bundle_path>, credential
files holding the mock's keys, and two mock upstreams (8081, and 8082 for
the C<eu> route).  Options: C<ttl>, C<check> (bundle), C<trace>,
C<body_max>, C<workers>, C<listen> (extra listen parameters),
C<http_config>, C<config> (extra text in server{}), C<main_config>,
C<events>, C<read_timeout>.  C<start> starts everything, C<stop> stops
it.  C<request> sends one HTTP/1.1 request with C<Connection: close> and
returns C<{status, headers (lowercase names), body (de-chunked), json,
raw}>.  C<records> parses the evidence lines the module logs (see
docs/directives.md, "Evidence") into C<{execution_id, type, hash,
canonical, record}>.  C<write_bundle($policy, %o)> replaces the bundle
atomically.

C<throttle_window($min, $left)> (exported on request) returns a
C<window_seconds> of at least C<$min> whose current epoch-aligned window
has at least C<$left> seconds left, for THROTTLE tests that must not see a
counter reset.

=cut
