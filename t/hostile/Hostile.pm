package Hostile;

# The driver of t/hostile/*.t: one governed gateway (two workers, Redis
# for the evidence, caller keys of every algorithm), the table of hostile
# requests in t/hostile/cases.pl sent to it one by one over raw sockets,
# and for each its documented answer (docs/directives.md, "Status codes
# and error codes"): the status, the JSON error and its headers, whether
# anything was forwarded, and the evidence docs/records.md promises (none
# before a verified AuthContext, else AuthContext + PolicyDecisionRecord
# + call record with the status sent, each once, hash-linked).  Cases may
# pipeline a second request on the connection, send slowly, or leave
# halfway.  Then what must hold after all of them: eight catastrophic
# regex calls at once fail closed while the call beside them is served;
# no record of anything the table says leaves none; foxgov-ledgerd takes
# every record (no dead letter) and foxgov verify each tenant's ledger;
# the same workers alive, no "exited on signal"; no Redis key or spool
# file named by a hostile tenant; no secret in any log line or record;
# no forged log line or terminal escape; no foxgov token at an upstream.
#
# HOSTILE_TRACE=1 prints each case's answer (status, code, message).
#
#   Hostile::run(quiet => 0)   the error log at debug (the module's
#                              evidence lines on): every line the module
#                              writes and every line above debug is
#                              checked (nginx's own debug lines print the
#                              request headers as received, by design:
#                              docs/security.md "Secrets")
#   Hostile::run(quiet => 1)   the requests' error log at info: every
#                              line of every log file is checked

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(:all);
use FoxGov::Test::Gateway qw(standard_policy parse_response);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

my $JSON = JSON::PP->new->utf8->canonical;

our $SYS_ID = '9d385017c611228701d22104cc95c371';

# The standard policy, plus two rules with catastrophic regexes over what
# the caller sends (docs/policy.md "Regular expressions": each match is
# bounded, and the decision fails closed at the bound).
sub policy {
    my $p = standard_policy();
    push @{ $p->{rules} },
        { id => 'deny-bad-regex-user', match => { kind => 'model',
            'body:/user' => { regex => '(a|aa)+' } },
          decision => 'DENY' },
        { id => 'deny-bad-regex-tag', match => { kind => 'model',
            'body:/metadata/tag' => { regex => '(\w+\s?)*' } },
          decision => 'DENY' };
    return $p;
}

###########################################################################
# The context the table is built with: tokens, keys, the last 428.

package Hostile::Ctx;

use FoxGov::Test::Fixtures qw(:all);

sub new {
    my ($class, %o) = @_;
    return bless { %o, tokens => [], cache => {} }, $class;
}

sub g { return $_[0]{g} }

# Every token handed out, so that the logs and the upstream can be
# searched for them.
sub _keep {
    my ($self, $t) = @_;
    push @{ $self->{tokens} }, $t if defined $t && !ref $t;
    return $t;
}

# A good caller token (minted by the CLI), cached by its options.
sub tok {
    my ($self, %o) = @_;
    my $k = join ',', map { "$_=" . (ref $o{$_} ? join('|', @{ $o{$_} })
                                                : $o{$_}) } sort keys %o;
    return $self->{cache}{$k} //= $self->_keep($self->{g}->token(%o));
}

sub good { return $_[0]->tok }

# A good token a client puts in the URL: nginx logs request lines (the
# "request:" of every error log line, the access log), so it is not
# looked for in the logs; it must still never reach the upstream as a
# credential, nor be accepted.
sub url_tok {
    my ($self) = @_;
    return $self->{url_tok} //= $self->{g}->token(sub => 'url-agent');
}

# forge_token with the gateway's caller key (EdDSA, kid "caller").
sub forge {
    my ($self, $kind, %o) = @_;
    $o{key} //= $self->{g}{auth_pem} unless $kind eq 'alg_none';
    return $self->_keep(forge_token($kind, tenant => 'acme', %o));
}

# A token signed by the caller key: claims from token_claims (%o), or a
# raw header / payload.
sub signed {
    my ($self, %o) = @_;
    my %s = (key => $o{key} // $self->{g}{auth_pem});
    $s{kid} = exists $o{kid} ? $o{kid} : 'caller';
    for my $f (qw(header payload alg secret sign_alg)) {
        $s{$f} = $o{$f} if exists $o{$f};
    }
    delete $s{key} if defined $o{secret};
    $s{claims} = $o{claims} // token_claims(tenant => 'acme',
        %{ $o{claim_opts} || {} });
    return $self->_keep(sign_jwt(%s));
}

# A token whose tenant_id claim is $t (any JSON value), signed properly.
sub tenant_tok {
    my ($self, $t) = @_;
    my $c = token_claims(tenant => 'acme');
    $c->{tenant_id} = $t;
    return $self->signed(claims => $c);
}

sub approval {
    my ($self, $req, %o) = @_;
    return $self->_keep($self->{g}->approval($req, %o));
}

# An approval-shaped token signed by hand (typ foxgov-approval+jwt).
sub approval_signed {
    my ($self, $req, %o) = @_;
    my $now = time;
    my $claims = { %{ $req || {} }, sub => 'alice', iat => $now,
                   exp => $now + 600, jti => 'jti-' . int(rand 1e9),
                   %{ $o{claims} || {} } };
    delete $claims->{expires_at};
    delete $claims->{$_} for grep { !defined $claims->{$_} } keys %$claims;
    return $self->_keep(sign_jwt(key => $o{key} // $self->{g}{approver_pem},
        header => { typ => 'foxgov-approval+jwt', %{ $o{header} || {} } },
        claims => $claims));
}

# The approval object of the last 428 (set by the driver).
sub held { return $_[0]{held} }

sub keys_of { return $_[0]{keys}{ $_[1] } }

package Hostile;

###########################################################################
# Sending

# The raw request of a case (every field may be a CODE ref taking the
# context, evaluated now).
sub build {
    my ($case, $c) = @_;

    my %k = map { $_ => (ref $case->{$_} eq 'CODE' && $_ ne 'check'
                         ? $case->{$_}->($c) : $case->{$_}) } keys %$case;

    return $k{raw} if defined $k{raw};

    my $method = $k{method} // 'POST';
    my $path = $k{path} // '/v1/chat/completions';
    my $raw = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
            . ($k{keepalive} ? '' : "Connection: close\r\n");

    my $tok = exists $k{token} ? $k{token} : $c->good;
    if (defined $tok) {
        my $src = $k{auth} // 'authorization';
        $raw .= $src eq 'authorization' ? "Authorization: Bearer $tok\r\n"
                                        : "$src: $tok\r\n";
    }

    for my $h (@{ $k{headers} || [] }) {
        $raw .= "$h->[0]: $h->[1]\r\n";
    }

    my $body = $k{body};
    if (defined $body) {
        $raw .= "Content-Type: " . ($k{ctype} // 'application/json') . "\r\n"
            unless exists $k{ctype} && !defined $k{ctype};
        if ($k{chunked}) {
            $raw .= "Transfer-Encoding: chunked\r\n\r\n";
            for my $piece (@{ $k{chunked} }) {
                $raw .= sprintf("%x\r\n%s\r\n", length $piece, $piece);
            }
            $raw .= "0\r\n\r\n";
            return $raw;
        }
        $raw .= 'Content-Length: ' . ($k{cl} // length $body) . "\r\n";
    } elsif (defined $k{cl}) {
        $raw .= "Content-Type: application/json\r\n";
        $raw .= "Content-Length: $k{cl}\r\n";
    }
    $raw .= "\r\n";
    $raw .= $body if defined $body;

    return $raw;
}

# Send several raw requests at once; their raw answers, in order.
sub concurrently {
    my ($port, $timeout, @raws) = @_;

    my (@s, %out);
    for my $i (0 .. $#raws) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $port, Proto => 'tcp', Timeout => $timeout)
            or die "connect: $!";
        $s->autoflush(1);
        syswrite($s, $raws[$i]);
        push @s, $s;
        $out{ fileno $s } = [ $i, '' ];
    }

    my $sel = IO::Select->new(@s);
    my $deadline = time() + $timeout;
    while ($sel->count && time() < $deadline) {
        for my $s ($sel->can_read($deadline - time())) {
            my $n = sysread($s, my $buf, 65536);
            if ($n) {
                $out{ fileno $s }[1] .= $buf;
            } else {
                $sel->remove($s);
            }
        }
    }

    my @r;
    $r[ $_->[0] ] = $_->[1] for values %out;
    close $_ for @s;
    return @r;
}

# Send one raw request and read its answer: until the response is complete
# (its Content-Length, or the last chunk) or the server closes, so that a
# lingering close (nginx waiting for a body it refused) is not counted as
# the time to answer.
sub exchange {
    my ($port, $raw, $timeout, $linger, $pieces) = @_;

    local $SIG{PIPE} = 'IGNORE';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $port, Proto => 'tcp', Timeout => $timeout)
        or return undef;
    my $deadline = time() + $timeout;

    my $off = 0;
    while ($off < length $raw) {
        my $left = $deadline - time();
        last if $left <= 0 || !IO::Select->new($s)->can_write($left);
        # a slow client: the request in $pieces parts, 50 ms apart
        my $len = length($raw) - $off;
        if ($pieces && $pieces > 1) {
            my $part = int(length($raw) / $pieces) + 1;
            $len = $part if $len > $part;
            sleep 0.05 if $off > 0;
        }
        my $n = syswrite($s, $raw, $len, $off);
        last unless $n;
        $off += $n;
        # nginx may answer before it reads everything (413, 400)
        last if IO::Select->new($s)->can_read(0);
    }

    my ($resp, $extra) = ('', '');
    my $sel = IO::Select->new($s);
    while (1) {
        my $left = $deadline - time();
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $resp .= $buf;
        my $i = index($resp, "\r\n\r\n");
        next if $i < 0;
        my $head = substr($resp, 0, $i);
        my $body = substr($resp, $i + 4);
        my $end;
        if ($head =~ /^content-length:\s*(\d+)/mi) {
            $end = $i + 4 + $1 if length $body >= $1;
        } elsif ($head =~ /^transfer-encoding:\s*chunked/mi) {
            $end = $i + 4 + $+[0] if $body =~ /(?:^|\r\n)0\r\n\r\n/;
        }
        next unless defined $end;
        # what follows the first answer (a pipelined request's answer)
        $extra = substr($resp, $end, length($resp) - $end, '');
        last;
    }
    # on a connection kept alive: whatever else comes (a second answer
    # would be a request smuggled in a body the gateway did not read)
    if ($linger) {
        my $end = time() + $linger;
        while ((my $left = $end - time()) > 0) {
            last unless $sel->can_read($left);
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $extra .= $buf;
        }
    }
    close $s;
    return wantarray ? ($resp, $extra) : $resp;
}

# The requests the upstreams logged (one line each).
sub _upstream_count {
    my ($g) = @_;
    my $n = 0;
    for my $f ('upstream.log', 'upstream2.log') {
        $n += () = $g->nginx->read_file($f) =~ /\n/g;
    }
    return $n;
}

###########################################################################
# The run

sub run {
    my (%o) = @_;

    plan skip_all => 'module not built' unless -f module_path();
    plan skip_all => 'CLI not built' unless -x foxgov_bin();
    plan skip_all => 'no redis-server'
        unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

    my $started = time();

    my $redis = FoxGov::Test::Redis->new;
    $redis->start;

    my $g = FoxGov::Test::Gateway->new(policy => policy(), workers => 2,
        http_config => "large_client_header_buffers 4 32k;\n",
        config => extra_locations());
    my $d = $g->dir;

    if ($o{quiet}) {
        # every request of every server logs here, at info
        $g->{opts}{http_config} .= "    error_log $d/http-error.log info;\n";
    }

    # caller keys of every algorithm, as t/gateway-auth.t
    my ($es_pem, $es_jwks) = keygen("$d/keys", 'es', 'ES256');
    my ($rs_pem, $rs_jwks) = keygen("$d/keys", 'rs', 'RS256');
    my $hs_secret = join '', map { ('A' .. 'Z', 'a' .. 'z')[rand 52] }
                             1 .. 40;
    write_hs256_jwks("$d/keys/hs.jwks.json", kid => 'hs',
                     secret => $hs_secret);
    my @keys;
    for my $f ($g->{auth_jwks}, $es_jwks, $rs_jwks, "$d/keys/hs.jwks.json") {
        push @keys, @{ $JSON->decode($g->nginx->read_file(
            $f =~ s{^\Q$d\E/}{}r))->{keys} };
    }
    $g->nginx->write_file('keys/all.jwks.json',
                          $JSON->encode({ keys => \@keys }));
    $g->{auth_jwks} = "$d/keys/all.jwks.json";

    my $spool = $g->with_redis($redis->addr,
        redis => 'connect_timeout=500ms timeout=2s');

    $g->start;

    my $c = Hostile::Ctx->new(g => $g, keys => { es => $es_pem,
        rs => $rs_pem, hs => $hs_secret });

    my $table = do "${\ dirname(__FILE__) }/cases.pl";
    die "cases.pl: $@" if $@;
    die "cases.pl: $!" unless ref $table eq 'CODE';
    my @cases = $table->($c);

    my %names;
    $names{ $_->{name} }++ for @cases;
    my @dups = grep { $names{$_} > 1 } sort keys %names;
    is_deeply(\@dups, [], 'every case has its own name');
    cmp_ok(scalar @cases, '>=', 150, 'at least 150 hostile cases: '
           . scalar @cases);

    my %cat;
    $cat{ $_->{cat} // '?' }++ for @cases;
    diag(join ', ', map { "$_ $cat{$_}" } sort keys %cat);

    my @w0 = $g->workers;
    is(scalar @w0, 2, 'two workers');

    # ------------------------------------------------------- the table

    my (@recorded, @unrecorded, %tenant_of, %case_of);
    my $port = $g->nginx->port(8080);

    for my $case (@cases) {
        my $n = $case->{name};
        my $e = $case->{expect};
        my $tb = time();
        my $raw = eval { build($case, $c) };
        diag(sprintf "build %s: %.3fs", $n, time() - $tb)
            if $ENV{HOSTILE_TRACE};
        die "$n: $@" unless defined $raw;
        my $before = _upstream_count($g);

        my $t0 = time();
        if (my $cut = $case->{abort}) {
            # a client that leaves halfway through its request
            local $SIG{PIPE} = 'IGNORE';
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                PeerPort => $port, Proto => 'tcp', Timeout => 5)
                or die "connect: $!";
            syswrite($s, substr($raw, 0, $cut));
            sleep 0.1;
            close $s;
            sleep 0.1;
            is(_upstream_count($g) - $before, 0, "$n: nothing forwarded");
            next;
        }

        my $then = $case->{then};
        $raw .= build($then, $c) if $then;
        my ($resp, $extra) = exchange($port, $raw, 10,
                                      $case->{keepalive} ? 0.5 : 0,
                                      $case->{slow});
        my $r = parse_response($resp);
        is($extra, '', "$n: one answer on the connection kept alive")
            if $case->{keepalive} && !$then;
        my $took = time() - $t0;
        my $h = $r->{headers};
        my $exec = $h->{'foxgov-execution-id'};

        my $ok = is($r->{status}, $e->{status}, "$n: $e->{status}");
        cmp_ok($took, '<', $e->{within} // 5, "$n: answered in time");

        if (defined $e->{code}) {
            my $err = ref(($r->{json} // {})->{error}) eq "HASH" ? $r->{json}{error} : undef;
            $ok &= is($err && $err->{code}, $e->{code}, "$n: $e->{code}");
            $ok &= ok($err && $err->{type} eq 'foxgov_error'
                      && exists $err->{message} && exists $err->{param}
                      && exists $err->{decision_hash}
                      && defined $exec && ($err->{execution_id} // '')
                         eq $exec
                      && $r->{body} =~ /\}\n\z/
                      && ($h->{'content-type'} // '') eq 'application/json'
                      && ($h->{'cache-control'} // '') eq 'no-store',
                      "$n: the documented JSON error and headers");
            like($err && $err->{message}, $e->{message},
                 "$n: the message says why") if $e->{message};
            if ($e->{status} == 401) {
                my $want = $e->{www} // ($e->{code} eq 'missing_token'
                    ? qr/^Bearer$/ : $e->{code} eq 'invalid_approval'
                    ? qr/^FoxGov-Approval error="invalid_approval"$/
                    : qr/^Bearer error="invalid_token"$/);
                like($h->{'www-authenticate'} // '', $want,
                     "$n: WWW-Authenticate");
            }
            my $recorded = ($e->{evidence} // '') eq 'recorded';
            ok($recorded ? ($err && defined $err->{decision_hash}
                            && $err->{decision_hash}
                               eq ($h->{'foxgov-decision-hash'} // ''))
                         : ($err && !defined $err->{decision_hash}
                            && !exists $h->{'foxgov-decision-hash'}),
               "$n: decision_hash " . ($recorded ? 'names the record'
                                                 : 'null: no decision'));
        } elsif ($e->{nginx}) {
            # answered by nginx before the module's handler: no FoxGov
            # headers, no JSON error
            $ok &= ok(!defined $exec && !$r->{json},
                      "$n: nginx's own answer, before the module");
        }

        # whatever the token's header, the answer never quotes it
        my @sent = grep { length >= 24 && index($raw, $_) >= 0 }
                   @{ $c->{tokens} };
        ok(!(grep { index($r->{raw}, $_) >= 0 } @sent),
           "$n: the answer quotes no token");

        # a second request pipelined behind it on the same connection:
        # answered on its own, nothing of the first one's call carried over
        if ($then) {
            my $r2 = parse_response($extra);
            my $e2 = $then->{expect};
            my $exec2 = $r2->{headers}{'foxgov-execution-id'};
            is($r2->{status}, $e2->{status},
               "$n: the pipelined request: $e2->{status}");
            is(ref(($r2->{json} // {})->{error}) ? $r2->{json}{error}{code}
               : undef, $e2->{code}, "$n: the pipelined request's code");
            ok(!defined $exec2 || !defined $exec || $exec2 ne $exec,
               "$n: the pipelined request is a call of its own");
            my $case2 = { name => "$n (pipelined)", expect => $e2 };
            if (($e2->{evidence} // 'none') ne 'none') {
                push @recorded, [ $case2, $r2, $exec2 ];
                $tenant_of{ $exec2 // '' } = $e2->{tenant} // 'acme';
            } else {
                push @unrecorded, [ $case2, $r2, $exec2 ];
            }
            $case_of{$exec2} = "$n (pipelined)" if defined $exec2;
        }

        my $fwd = ($e->{evidence} // '') eq 'forwarded';
        my $nfwd = ($fwd ? 1 : 0)
            + ($then && ($then->{expect}{evidence} // '') eq 'forwarded'
               ? 1 : 0);
        my $after = _upstream_count($g);
        is($after - $before, $nfwd,
           "$n: " . ($nfwd ? "forwarded $nfwd" : 'nothing forwarded'));

        if (($e->{evidence} // 'none') ne 'none') {
            push @recorded, [ $case, $r, $exec ];
            $tenant_of{ $exec // '' } = $e->{tenant} // 'acme';
        } else {
            push @unrecorded, [ $case, $r, $exec ];
        }
        $case_of{ $exec } = $n if defined $exec;

        if ($case->{check}) {
            ok(eval { $case->{check}->($r, $c); 1 }, "$n: its own check")
                or diag($@);
        }

        diag("$n: got\n" . substr($r->{raw}, 0, 1500)) unless $ok;
        diag(sprintf "%s: %s %s %s (%.3fs)", $n, $r->{status} // '-',
             ref(($r->{json} // {})->{error}) ? $r->{json}{error}{code} : "",
             ref(($r->{json} // {})->{error}) ? $r->{json}{error}{message} : "", $took)
            if $ENV{HOSTILE_TRACE};
    }

    # ------------------------------ the policy engine under a bad regex

    {
        my $bad = '{"model":"gpt-4o","messages":[],"user":"'
                . ('a' x 3000) . '!"}';
        my $goodreq = build({ body => '{"model":"gpt-4o","messages":'
                                    . '[{"role":"user","content":"hi"}]}' },
                            $c);
        my @raws = ((map { build({ body => $bad }, $c) } 1 .. 8), $goodreq);
        my $t0 = time();
        my @resp = map { parse_response($_) } concurrently($port, 10, @raws);
        my $took = time() - $t0;
        is_deeply([ map { $_->{status} } @resp ], [ (503) x 8, 200 ],
                  'eight catastrophic regex calls at once: 503 each, and '
                  . 'the call beside them is served');
        cmp_ok($took, '<', 3, 'all nine answered within 3 s');
        for my $i (0 .. $#resp) {
            my $r = $resp[$i];
            my $exec = $r->{headers}{'foxgov-execution-id'} // next;
            my $case = { name => "concurrent regex $i", expect => {
                status => $r->{status},
                evidence => $i == $#resp ? 'forwarded' : 'recorded',
                decision => $i == $#resp ? 'ALLOW' : 'DENY',
                gate => $i == $#resp ? undef : [ policy => 'error' ] } };
            push @recorded, [ $case, $r, $exec ];
            $tenant_of{$exec} = 'acme';
        }
    }

    # -------------------------------------------------------- evidence

    my %tenants = map { $_ => 1 } values %tenant_of;
    my %by;
    my $deadline = time() + 15;
    while (1) {
        %by = ();
        for my $t (keys %tenants) {
            my $x = $redis->by_execution($t);
            $by{$_} = $x->{$_} for keys %$x;
        }
        my $missing = grep {
            my $x = $by{ $_->[2] // '' };
            !($x && $x->{AuthContext} && $x->{PolicyDecisionRecord}
              && ($x->{ModelCallRecord} || $x->{ToolCallRecord}))
        } @recorded;
        last if !$missing || time() > $deadline;
        sleep 0.2;
    }

    for my $rc (@recorded) {
        my ($case, $r, $exec) = @$rc;
        my $n = $case->{name};
        my $e = $case->{expect};
        my $x = $by{ $exec // '' } // {};
        my ($auth, $dec) = map { $x->{$_} && $x->{$_}[0] }
                           qw(AuthContext PolicyDecisionRecord);
        my ($call) = map { $x->{$_} ? $x->{$_}[0] : () }
                     qw(ModelCallRecord ToolCallRecord);
        ok($auth && $dec && $call, "$n: AuthContext, PolicyDecisionRecord "
           . 'and call record in Redis') or next;
        is(scalar(map { @$_ } values %$x), 3, "$n: once each");
        ok(!(grep { sha256_hex($_->{r}) ne $_->{h} } $auth, $dec, $call),
           "$n: each envelope_hash is sha256 of the record");
        ok($dec->{rec}{auth_context_sha256} eq $auth->{h}
           && $call->{rec}{policy_decision_sha256} eq $dec->{h},
           "$n: the hash links");
        is($dec->{rec}{decision}, $e->{decision} // 'DENY', "$n: decision");
        if (my $gate = $e->{gate}) {
            ok((grep { $_->{gate} eq $gate->[0]
                       && $_->{result} eq $gate->[1] }
                @{ $dec->{rec}{gates_evaluated} }),
               "$n: gate $gate->[0] = $gate->[1]")
                or diag(explain($dec->{rec}{gates_evaluated}));
        }
        is($call->{rec}{status}, $r->{status}, "$n: the call record says "
           . "the status sent");
        is($call->{rec}{outcome},
           ($e->{evidence} eq 'forwarded' ? 'completed' : 'denied'),
           "$n: outcome");
        is($auth->{rec}{tenant_id}, $e->{tenant} // 'acme',
           "$n: in its tenant's stream");
        is($r->{headers}{'foxgov-decision-hash'}, $dec->{h},
           "$n: FoxGov-Decision-Hash");
        my %tid = map { $_->{rec}{trace}{trace_id} => 1 } $auth, $dec, $call;
        is(scalar keys %tid, 1, "$n: one trace_id");
        if ($e->{records}) {
            ok(eval { $e->{records}->($auth->{rec}, $dec->{rec},
                                      $call->{rec}); 1 },
               "$n: what its records say") or diag($@);
        }
    }

    # no record for anything refused before a verified AuthContext, nor
    # for what nginx answered itself: every execution id in Redis is one
    # of the recorded cases
    my $rcl = $redis->client;
    my @rkeys = $rcl->keys('*');
    my %all;
    my $evidence = '';
    for my $k (grep { /^foxgov:ev:/ } @rkeys) {
        for my $ent (@{ [ $rcl->xrange($k, '-', '+') ] }) {
            my %f = @{ $ent->[1] };
            $evidence .= join("\n", map { $f{$_} // '' } qw(t h r o)) . "\n";
            my $rec = eval { $JSON->decode($f{r}) } or next;
            $all{ $rec->{execution_id} } = $k;
        }
    }
    my %want = map { ($_->[2] // '') => 1 } @recorded;
    my @extra = grep { !$want{$_} } sort keys %all;
    is_deeply([ map { "$_ ($all{$_}) " . ($case_of{$_} // '?') } @extra ],
              [], 'INV-INT-004: no record of any refusal that the table '
              . 'says leaves none');
    is(scalar(grep { $all{ $_->[2] // '' } } @unrecorded), 0,
       'no unrecorded case has a record');

    # hostile tenants never become a stream key or a spool path
    my @bad_keys = grep { !/^foxgov:ev:\{[a-z0-9][a-z0-9_-]{0,62}\}\z/ }
                   @rkeys;
    is_deeply(\@bad_keys, [], 'every Redis key is a valid tenant\'s stream');
    is_deeply([ sort map { /^foxgov:ev:\{(.*)\}\z/ } @rkeys ],
              [ sort keys %{{ map { $_ => 1 } values %tenant_of }} ],
              'the streams are those of the tenants that were recorded');
    opendir(my $sd, $spool) or die "$spool: $!";
    my @spooled = grep { $_ ne '.' && $_ ne '..' } readdir $sd;
    closedir $sd;
    is_deeply([ grep { !/^spool-\d+\.fgs\z/ || -l "$spool/$_"
                       || !-f "$spool/$_" } @spooled ], [],
              'the spool holds only the workers\' own files');
    my @found = grep { -e $_ } map { ("$d/$_", "$spool/$_", "/tmp/$_") }
        qw(x etc beta acme-evil);
    is_deeply(\@found, [], 'no path a hostile tenant named was made');
    $rcl->quit;

    # ----------------------- the ledger takes every record of every case

    {
        my $ld = FoxGov::Test::Ledgerd->new(redis => $redis,
            ledger => "file:$d/ledger", log => "$d/ledgerd.log",
            args => [ '--orphan-grace', '0ms' ]);
        is($ld->run_once, 0, 'foxgov-ledgerd appends every record');
        my $dlq = $redis->client->xlen('foxgov:dlq') // 0;
        is($dlq, 0, 'no record dead-lettered (each is schema-valid, '
           . 'linked, in its tenant\'s stream)')
            or diag(join "\n", map { join ' ', @{ $_->[1] } }
                    @{ [ $redis->client->xrange('foxgov:dlq', '-', '+') ] }
                    [0 .. 4]);
        for my $t (sort keys %{{ map { $_ => 1 } values %tenant_of }}) {
            my ($rc, undef, $err) = run_foxgov('verify',
                "$d/ledger/$t/ledger.jsonl");
            is($rc, 0, "foxgov verify accepts the ledger of "
               . substr($t, 0, 12)) or diag($err);
        }
    }

    # -------------------------------------------------------- workers

    my @w1 = $g->workers;
    is_deeply(\@w1, \@w0, 'the same workers are alive after every case');
    my $errlog = $g->nginx->read_file('error.log')
               . ($o{quiet} ? $g->nginx->read_file('http-error.log') : '');
    unlike($errlog, qr/exited on signal|worker process \d+ exited/,
           'no worker exited');

    # ---------------------------------------------------------- secrets

    my $up_log = join '', map { $g->nginx->read_file($_) }
                              'upstream.log', 'upstream2.log';
    my @toks = grep { length >= 24 } @{ $c->{tokens} };
    my @at_upstream = grep { index($up_log, $_) >= 0 }
                      @toks, grep { defined } $c->{url_tok};
    is(scalar @at_upstream, 0, 'the upstreams never received a foxgov '
       . 'token or approval (' . scalar(@toks) . ' looked for)');
    unlike($up_log, qr/"(?:foxgov-auth|foxgov-approval)"/,
           'no FoxGov-Auth or FoxGov-Approval header reached an upstream');

    is($g->stop, 0, 'nginx stops cleanly');
    $redis->stop;
    my ($ok, @bad) = $g->nginx->error_log_ok();
    ok($ok, 'no alert, crit or emerg in the error log')
        or diag(join "\n", @bad[0 .. ($#bad > 20 ? 20 : $#bad)]);
    if ($o{quiet}) {
        my @hbad = grep { /\[(?:alert|emerg|crit)\]/ }
                   split /\n/, $g->nginx->read_file('http-error.log');
        is_deeply(\@hbad, [], 'no alert, crit or emerg in the requests\' log');
    }

    # a forged token cut short can be a bare JWS header, which begins
    # every token of that key, the query string's url_tok (logged in
    # "request:" by design, above) included: not a secret of its own
    my $url_tok = $c->{url_tok} // '';
    my %secret;
    $secret{"token $_"} = $toks[$_]
        for grep { index($url_tok, $toks[$_]) < 0 } 0 .. $#toks;
    my $creds = $g->upstream->credentials;
    $secret{"credential $_"} = $creds->{$_} for keys %$creds;
    $secret{'credential eu'} = 'sk-openai-eu-test';
    $secret{'HS256 secret'} = $hs_secret;
    for my $k (qw(caller approver bundler es rs)) {
        my $pem = $g->nginx->read_file("keys/$k.pem");
        my @lines = grep { !/^-----/ && length >= 32 } split /\n/, $pem;
        $secret{"$k private key, line $_"} = $lines[$_] for 0 .. $#lines;
    }

    my @files = grep { -f "$d/$_" } qw(error.log http-error.log stderr.log
        access.log gateway.log);
    my @log;
    for my $f (@files) {
        my $keep = 1;
        for (split /\n/, $g->nginx->read_file($f)) {
            if (!$o{quiet} && $f eq 'error.log') {
                # at debug, nginx's own debug lines print request headers
                # as received (docs/security.md); the module's lines and
                # every line above debug are checked
                # (its own debug lines begin "foxgov")
                $keep = !/\[debug\]/
                        || /^\S+ \S+ \[debug\] \d+#\d+: (?:\*\d+ )?foxgov[ :]/
                    if m{^\d{4}/\d\d/\d\d };
            }
            # nginx's own answer to a malformed header line quotes the
            # line as received, at info (docs/security.md "Secrets")
            $keep = 0 if /\[info\] \d+#\d+: \*\d+ client sent (?:invalid|duplicate) header line: /;
            push @log, $_ if $keep;
        }
    }
    my $log = join "\n", @log;
    # what a request says never becomes a log line of its own (at debug,
    # nginx's own "http uri:" line prints the decoded URI as it is, and
    # its continuation cannot be told from a line: checked at info)
    unlike($log, qr/^2026\/01\/01 00:00:00 \[warn\] 1/m,
           'no log line forged by a request') if $o{quiet};
    unlike($log, qr/\x1b\[31m/, 'no terminal escape reaches a log line');

    my @in_evidence = grep { index($evidence, $secret{$_}) >= 0 }
                      sort keys %secret;
    is_deeply(\@in_evidence, [], 'no secret in any record in Redis');

    my @leaked = grep { index($log, $secret{$_}) >= 0 } sort keys %secret;
    for my $k (@leaked[0 .. ($#leaked > 2 ? 2 : $#leaked)]) {
        my ($line) = grep { index($_, $secret{$k}) >= 0 } @log;
        diag("$k is in: " . substr($line, 0, 600));
    }
    is_deeply(\@leaked, [], 'no token, credential or private key in any '
              . 'log line (' . scalar(keys %secret) . ' secrets, '
              . scalar(@log) . " lines of @files)");
    if (!$o{quiet}) {
        like($log, qr/foxgov evidence /, 'the evidence lines were logged '
             . '(debug)');
    }

    diag(sprintf '%d cases in %.1f s', scalar @cases, time() - $started);

    done_testing();
}

sub extra_locations {
    return <<'EOF';
        location /req/ {
            rewrite ^/req(/.*)$ $1 break;
            foxgov_trace require;
            foxgov_call model openai;
            foxgov_credential openai file=%%TESTDIR%%/creds/openai_default;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
EOF
}

1;
