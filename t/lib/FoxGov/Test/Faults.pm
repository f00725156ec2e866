package FoxGov::Test::Faults;

# The harness of t/faults/: a whole evidence path (Redis, a gateway of two
# workers with foxgov_redis and foxgov_spool, the mock providers, and
# foxgov-ledgerd on a file ledger or PostgreSQL), bounded load from
# several clients that counts every answer by execution id and status, a
# fault injected while the load runs, and, once everything has recovered,
# the one check every scenario ends with: served == recorded.  The POD at
# the end says how to use it.

use strict;
use warnings;

use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Gateway qw(parse_response);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Nginx qw(module_path nginx_binary);
use FoxGov::Test::Redis;

my $JSON = JSON::PP->new->utf8->canonical;

# The kinds of call the clients send, in turn: [name, tenant, method,
# path, body, record type of the call].  'deny' is decided DENY (403) by
# the standard policy, so refusals are counted too.
my %KIND = (
    model => [ 'acme', '/v1/chat/completions',
               { model => 'gpt-4o-2024-08-06',
                 messages => [ { role => 'user', content => 'fault' } ] },
               'ModelCallRecord' ],
    deny  => [ 'beta', '/v1/chat/completions',
               { model => 'gpt-4o-2024-08-06', max_tokens => 9000,
                 messages => [ { role => 'user', content => 'too big' } ] },
               'ModelCallRecord' ],
    tool  => [ 'beta', '/api/chat.postMessage',
               { channel => 'C0FAULTS01', text => 'fault' },
               'ToolCallRecord' ],
    async => [ 'acme', '/async/v1/chat/completions',
               { model => 'gpt-4o-mini',
                 messages => [ { role => 'user', content => 'async' } ] },
               'ModelCallRecord' ],
);

# Skip the whole test file unless everything it runs is here.
sub requirements {
    plan skip_all => 'module not built' unless -f module_path();
    plan skip_all => 'CLI not built' unless -x foxgov_bin();
    plan skip_all => 'foxgov-ledgerd not built'
        unless -x FoxGov::Test::Ledgerd::bin();
    plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
        split /:/, $ENV{PATH};
    plan skip_all => 'no /proc (the workers are found there)'
        unless -d '/proc/self';
}

# new(%o): strict => 1 (foxgov_evidence strict in http{}, with an async
# location /async/ beside it), kinds => [names] (default model, deny,
# tool, and async when strict), ledger => 'file' | a postgresql:// URI,
# spool => DIR (the spool directory, made by the caller), spool_args,
# gateway => {more options of FoxGov::Test::Gateway->new}, redis_args.
sub new {
    my ($class, %o) = @_;

    my $self = bless { opts => \%o, t0 => time() }, $class;

    $self->{redis} = FoxGov::Test::Redis->new;
    $self->{redis}->start;

    my $g = $self->{gateway} = FoxGov::Test::Gateway->new(workers => 2,
        read_timeout => '20s', %{ $o{gateway} // {} },
        config => _async_location($o{gateway}{config}));
    $self->{dir} = $g->dir;

    $self->{spool} = $g->with_redis($self->{redis}->addr,
        redis => $o{redis_args} // 'connect_timeout=300ms timeout=1s',
        (defined $o{spool} ? (spool => $o{spool}) : ()),
        ($o{spool_args} ? (spool_args => $o{spool_args}) : ()));
    $g->{opts}{http_config} .= "    foxgov_evidence strict;\n"
        if $o{strict};
    $g->start;
    $self->_daemonize if $o{daemon};

    $self->{kinds} = $o{kinds}
        // [ 'model', 'deny', 'tool', ($o{strict} ? 'async' : ()) ];
    $self->{tokens} = { map { $_ => $g->token(tenant => $_) }
                        qw(acme beta) };

    $self->{ledger} = $o{ledger} // 'file';
    $self->{ledger_spec} = $self->{ledger} eq 'file'
        ? "file:$self->{dir}/ledger" : $self->{ledger};
    $self->{consumers} = 0;
    $self->start_ledgerd;

    return $self;
}

my @DAEMONS;

# nginx as a daemon (daemon on), as in production: only a daemon's master
# takes the signals of a binary upgrade (USR2 is ignored by a master whose
# parent is the one it started with, WINCH by one not daemonized).  The
# gateway started in the foreground is stopped and started again so.
sub _daemonize {
    my ($self) = @_;
    my $t = $self->nginx;
    my $d = $self->{dir};
    $t->stop;
    my $conf = $t->read_file('nginx.conf');
    $conf =~ s/^daemon off;/daemon on;/m or die "no daemon off in nginx.conf";
    # the binary a USR2 starts gets only the variables named with env: the
    # sanitizers' options (the asan suite's log_path and suppressions) too
    for my $v (grep { defined $ENV{$_} }
               qw(ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS)) {
        $conf = "env $v;\n$conf" unless $conf =~ /^env \Q$v\E;/m;
    }
    $t->write_file('nginx.conf', $conf);
    unlink "$d/nginx.pid";
    system(nginx_binary(), '-p', "$d/", '-c', "$d/nginx.conf",
           '-e', "$d/error.log") == 0 or die "nginx (daemon) did not start";
    my $pid = wait_until(10, sub {
        my $p = $t->read_file('nginx.pid') =~ s/\s+//gr;
        $p =~ /^\d+$/ && kill(0, $p) ? $p : 0;
    }) or die "nginx (daemon) wrote no pid file";
    push @DAEMONS, $pid;
    wait_until(10, sub { my @w = $self->gateway->workers; @w == 2 });
    $self->{daemon} = 1;
}

# Remember a master started by a daemon (a binary upgrade's new one), so
# it is stopped at the end whatever happens.
sub daemon_started { push @DAEMONS, $_[1] }

# QUIT a daemon's master and wait (at most $timeout s) until it is gone:
# true when it went.
sub stop_master {
    my ($self, $pid, $timeout) = @_;
    kill 'QUIT', $pid;
    my $gone = wait_until($timeout // 20, sub { !kill(0, $pid) });
    @DAEMONS = grep { $_ != $pid } @DAEMONS;
    return $gone if $gone;
    kill 'KILL', $pid;
    return 0;
}

END {
    local $?;
    for my $pid (@DAEMONS) {
        kill 'QUIT', $pid;
        for (1 .. 100) { last unless kill 0, $pid; sleep 0.05 }
        kill 'KILL', $pid;
    }
}

# A governed location whose evidence is async whatever the http{} level
# says (so a strict gateway has both kinds of call).
sub _async_location {
    my ($more) = @_;
    return ($more // '') . <<'EOF';
        location /async/ {
            rewrite ^/async(/.*)$ $1 break;
            foxgov_call model openai;
            foxgov_evidence async;
            foxgov_credential openai-async
                file=%%TESTDIR%%/creds/openai_default;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location = /metrics {
            foxgov_metrics;
        }
EOF
}

sub redis   { return $_[0]{redis} }
sub gateway { return $_[0]{gateway} }
sub nginx   { return $_[0]{gateway}->nginx }
sub ledgerd { return $_[0]{ledgerd} }
sub dir     { return $_[0]{dir} }
sub spool   { return $_[0]{spool} }
sub tenants { return qw(acme beta) }

# Start foxgov-ledgerd in the background (a new consumer name with
# new_consumer => 1, more options in args).
sub start_ledgerd {
    my ($self, %o) = @_;
    $self->{consumers}++ if $o{new_consumer} || !$self->{consumers};
    my $n = ++$self->{ledgerd_runs};
    $self->{ledgerd} = FoxGov::Test::Ledgerd->new(redis => $self->{redis},
        ledger => $self->{ledger_spec}, log => "$self->{dir}/ledgerd-$n.log",
        args => [ '--consumer', "faults-$self->{consumers}",
                  '--block', '200ms', @{ $o{args} // [] } ]);
    $self->{ledgerd}->start;
    return $self->{ledgerd};
}

# The nginx master's pid (from its pid file).
sub master {
    my ($self) = @_;
    return $self->nginx->read_file('nginx.pid') =~ s/\s+//gr;
}

# ------------------------------------------------------------------ load

# One client: calls in turn of @kinds until the stop file is there, $max
# calls are made or the deadline passes; one line a call in $out:
# "kind status execution-id" ("kind ERR -" when no answer came).
sub _client {
    my ($self, $i, $out, $stop, $max, $deadline, $pace) = @_;

    my $port = $self->nginx->port(8080);
    my @kinds = @{ $self->{kinds} };
    open my $fh, '>', $out or die "$out: $!";
    $fh->autoflush(1);

    for my $n (0 .. $max - 1) {
        last if -e $stop || time() > $deadline;
        my $kind = $kinds[($n + $i) % @kinds];
        my ($tenant, $path, $body) = @{ $KIND{$kind} };
        $body = $JSON->encode($body);
        my $raw = "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Bearer $self->{tokens}{$tenant}\r\n"
            . "Content-Type: application/json\r\n"
            . 'Content-Length: ' . length($body) . "\r\n"
            . "Connection: close\r\n\r\n$body";
        my $resp = _http($port, $raw, 30);
        my $r = defined $resp ? parse_response($resp) : undef;
        if ($r && $r->{status}) {
            printf {$fh} "%s %s %s\n", $kind, $r->{status},
                $r->{headers}{'foxgov-execution-id'} // '-';
        } else {
            print {$fh} "$kind ERR -\n";
        }
        sleep $pace;
    }
    close $fh;
}

# One request on a new connection: the whole answer, or undef.
sub _http {
    my ($port, $raw, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return undef;
    my $deadline = time() + $timeout;
    my $off = 0;
    $s->blocking(1);
    while ($off < length $raw) {
        my $n = syswrite($s, $raw, length($raw) - $off, $off);
        return undef unless defined $n;
        $off += $n;
    }
    my $sel = IO::Select->new($s);
    my $resp = '';
    while (time() < $deadline) {
        next unless $sel->can_read(0.5);
        my $n = sysread($s, my $buf, 65536);
        return undef unless defined $n;
        last if $n == 0;
        $resp .= $buf;
    }
    close $s;
    return length $resp ? $resp : undef;
}

# One call of $kind from the test itself, counted with the load $name's
# answers (so its records are expected in the ledger too): its status.
sub probe {
    my ($self, $name, $kind) = @_;
    my ($tenant, $path, $body) = @{ $KIND{$kind // 'model'} };
    my $r = $self->{gateway}->request(POST => $path,
        token => $self->{tokens}{$tenant}, body => $body, timeout => 30);
    open my $fh, '>>', "$self->{dir}/load-$name-probe.out" or die $!;
    printf {$fh} "%s %s %s\n", $kind // 'model', $r->{status} || 'ERR',
        $r->{headers}{'foxgov-execution-id'} // '-';
    close $fh;
    return $r->{status};
}

# The answers so far: a list of [kind, status, execution id].
sub _answers {
    my ($self, $name) = @_;
    my @a;
    for my $f (glob "$self->{dir}/load-$name-*.out") {
        open my $fh, '<', $f or next;
        while (my $l = <$fh>) {
            next unless $l =~ /\n\z/;
            chomp $l;
            push @a, [ split / /, $l ];
        }
    }
    return @a;
}

# load(name => N, clients => 4, before => answers before the fault,
# fault => sub { $load->wait_more(N) ... }, after => answers after the
# fault returned, max => calls a client at most (1000), pace => seconds
# between a client's calls (0.01), timeout => s (50)).  Returns
# a load object for check().
sub load {
    my ($self, %o) = @_;

    my $name = $o{name} // 'load';
    my $clients = $o{clients} // 4;
    my $max = $o{max} // 1000;
    my $pace = $o{pace} // 0.01;
    my $stop = "$self->{dir}/load-$name.stop";
    my $t0 = time();
    my $deadline = $t0 + ($o{timeout} // 50);

    my @pids;
    for my $i (1 .. $clients) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            $self->_client($i, "$self->{dir}/load-$name-$i.out", $stop,
                           $max, $deadline, $pace);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }

    my $load = FoxGov::Test::Faults::Load->new($self, $name, $deadline);

    ok($load->wait_more($o{before} // 40), "$name: load before the fault");
    if ($o{fault}) {
        my $f0 = time();
        $o{fault}->($load);
        $load->{fault_seconds} = time() - $f0;
        $load->mark;
    }
    ok($load->wait_more($o{after} // 40), "$name: load after the fault");

    open my $s, '>', $stop or die "$stop: $!";
    close $s;

    my $killed = 0;
    for my $pid (@pids) {
        while (waitpid($pid, WNOHANG) == 0) {
            if (time() > $deadline + 35) {
                kill 'KILL', $pid;
                waitpid $pid, 0;
                $killed++;
                last;
            }
            sleep 0.02;
        }
    }
    is($killed, 0, "$name: every client finished");

    $load->{answers} = [ $self->_answers($name) ];
    $load->{seconds} = time() - $t0;
    return $load;
}

# The gateway's metrics: { 'name{labels}' => value }.
sub metrics {
    my ($self) = @_;
    my $r = $self->{gateway}->request(GET => '/metrics');
    my %m;
    for (split /\n/, $r->{body} // '') {
        $m{$1} = $2 if /^(\w+(?:\{[^}]*\})?) (\S+)$/;
    }
    return \%m;
}

# The evidence counters: "sent N, spooled N, drained N, failed N".
sub evidence_counters {
    my ($self) = @_;
    my $m = $self->metrics;
    return join ', ', map {
        "$_ " . ($m->{"foxgov_evidence_records_total{result=\"$_\"}"} // '?')
    } qw(sent spooled drained failed);
}

# ----------------------------------------------------------------- check

# Wait until $cond->() is true or $timeout s pass; its last value.
sub wait_until {
    my ($timeout, $cond) = @_;
    my $deadline = time() + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v || time() > $deadline;
        sleep 0.1;
    }
}

# The spool files and their bytes of records (beyond the 8-byte magic).
sub spool_state {
    my ($self) = @_;
    my %s;
    for my $f (glob "$self->{spool}/spool-*.fgs") {
        my $n = -s $f;
        $s{$f} = defined $n ? ($n > 8 ? $n - 8 : 0) : 0;
    }
    return \%s;
}

sub spool_bytes {
    my ($self) = @_;
    my $s = $self->spool_state;
    my $n = 0;
    $n += $_ for values %$s;
    return $n;
}

# The records of a tenant's ledger, in seq order: canonical JSON texts.
sub ledger_records {
    my ($self, $tenant) = @_;
    my @r;
    if ($self->{ledger} eq 'file') {
        my $p = "$self->{dir}/ledger/$tenant/ledger.jsonl";
        open my $fh, '<', $p or return ();
        while (my $l = <$fh>) {
            last unless $l =~ /\n\z/;
            my $e = eval { $JSON->decode($l) } or next;
            push @r, $e->{record};
        }
        return @r;
    }
    my $out = $self->{opts}{pg}->psql("SELECT convert_from(record, 'UTF8') "
        . "FROM foxgov.ledger WHERE tenant_id = '$tenant' ORDER BY seq");
    return map { $JSON->decode($_) } grep { length } split /\n/, $out;
}

# { tenant => { exec => { record_type => count } } } of the ledgers.
sub ledger_calls {
    my ($self) = @_;
    my %by;
    for my $t ($self->tenants) {
        for my $r ($self->ledger_records($t)) {
            $by{$t}{ $r->{execution_id} // '-' }{ $r->{record_type} }++;
        }
    }
    return \%by;
}

# A stream's consumer groups: [{name, pending, lag, ...}, ...].
sub groups {
    my ($self, $tenant) = @_;
    my $r = $self->{redis}->client;
    my @g = eval { $r->xinfo('GROUPS', "foxgov:ev:{$tenant}") };
    $r->quit;
    return map { +{ @$_ } } @g;
}

# The calls the load was answered with an execution id for, each with
# the record types it must have in the ledger: { exec => [tenant, types] }.
sub expected {
    my ($self, $load) = @_;
    my %want;
    for my $a (@{ $load->{answers} }) {
        my ($kind, $status, $exec) = @$a;
        next if $status eq 'ERR' || $exec eq '-';
        my (undef, undef, undef, $call) = @{ $KIND{$kind} };
        $want{$exec} = [ $KIND{$kind}[0],
            [ sort 'AuthContext', 'PolicyDecisionRecord', $call ] ];
    }
    return \%want;
}

# check($load, %o): every served call's records in the ledger once, no
# other record there, the spools empty, the streams read and
# acknowledged, nothing dead-lettered, foxgov verify green for each
# tenant, no worker crashed, no alert but those allowed (alerts =>
# qr/.../), no client left without an answer (unanswered => N allowed).
# Extra %o: lost => { exec => 1 } (calls whose records the gateway said
# it could not keep: they must be in no ledger at all, or partly).
# Returns { served, recorded, records, statuses }.
sub check {
    my ($self, $load, %o) = @_;

    my $name = $load->{name};
    my @answers = @{ $load->{answers} };
    my %status;
    $status{ $_->[1] }++ for @answers;
    my $want = $self->expected($load);
    my $lost = $o{lost} // {};
    my @served = grep { !$lost->{$_} } keys %$want;

    is($status{ERR} // 0, $o{unanswered} // 0,
       "$name: every call was answered")
        or diag(explain(\%status));

    # 1. the gateway's spools are empty (every record is in Redis)
    my $left = wait_until(30, sub { $self->spool_bytes == 0 ? 'ok' : 0 });
    ok($left, "$name: every spool is empty")
        or diag(explain($self->spool_state));

    # 2. the ledger has every served call's records (ledgerd running)
    my $missing_of = sub {
        my ($by) = @_;
        return grep {
            my ($t, $types) = @{ $want->{$_} };
            my $x = $by->{$t}{$_} // {};
            grep { !$x->{$_} } @$types;
        } @served;
    };
    # ... and has acknowledged every entry: a restarted daemon finds the
    # records a killed one appended but did not acknowledge already in
    # the ledger, and acknowledges them only once it has claimed them
    # (--claim-idle), which may come after the ledger is complete
    my $acked = sub {
        for my $t ($self->tenants) {
            my ($g) = grep { $_->{name} eq 'foxgov-ledger' }
                      $self->groups($t);
            return 0 unless $g && $g->{pending} == 0
                            && (!defined $g->{lag} || $g->{lag} == 0);
        }
        return 1;
    };
    my $by;
    wait_until(40, sub {
        $by = $self->ledger_calls;
        return !$missing_of->($by) && $acked->();
    });

    # 3. the daemon stops cleanly; what it leaves in the streams
    is($self->{ledgerd}->stop(30), 0, "$name: foxgov-ledgerd stops (0)")
        or diag($self->{ledgerd}->log_text);
    $by = $self->ledger_calls;

    my @missing = $missing_of->($by);
    is(scalar @missing, 0, "$name: every served call has its records in "
                           . 'the ledger')
        or diag(join "\n", map {
            my ($t, $types) = @{ $want->{$_} };
            "$_ ($t) has: " . join(' ', sort keys %{ $by->{$t}{$_} // {} })
        } @missing[0 .. ($#missing > 9 ? 9 : $#missing)]);

    my (@twice, @stray, @wrong);
    my $records = 0;
    for my $t ($self->tenants) {
        for my $x (keys %{ $by->{$t} // {} }) {
            my $types = $by->{$t}{$x};
            $records += $_ for values %$types;
            push @twice, "$x ($t)" if grep { $_ > 1 } values %$types;
            if (!$want->{$x}) {
                push @stray, "$x ($t): " . join(' ', sort keys %$types);
            } elsif ($want->{$x}[0] ne $t || ($lost->{$x} ? 0
                     : join(' ', sort keys %$types)
                       ne join(' ', @{ $want->{$x}[1] })))
            {
                push @wrong, "$x ($t): " . join(' ', sort keys %$types);
            }
        }
    }
    is(scalar @twice, 0, "$name: no record twice in the ledger")
        or diag(join "\n", @twice[0 .. ($#twice > 9 ? 9 : $#twice)]);
    is(scalar @stray, 0, "$name: no record without a served call")
        or diag(join "\n", @stray[0 .. ($#stray > 9 ? 9 : $#stray)]);
    is(scalar @wrong, 0, "$name: each call's records are its three, "
                         . 'in its tenant')
        or diag(join "\n", @wrong[0 .. ($#wrong > 9 ? 9 : $#wrong)]);

    my $recorded = grep {
        my ($t, $types) = @{ $want->{$_} };
        my $x = $by->{$t}{$_} // {};
        !grep { ($x->{$_} // 0) != 1 } @$types;
    } @served;
    is($recorded, scalar @served, "$name: served == recorded");
    is($records, 3 * @served + $self->_lost_records($by, $lost),
       "$name: the ledgers hold 3 records a served call");

    # 4. the streams: nothing pending, nothing unread; no dead letter
    for my $t ($self->tenants) {
        my ($grp) = grep { $_->{name} eq 'foxgov-ledger' } $self->groups($t);
        note(explain($grp));
        ok($grp && $grp->{pending} == 0
           && (!defined $grp->{lag} || $grp->{lag} == 0),
           "$name: $t: the stream is read and acknowledged")
            or diag(explain($grp));
    }
    my $r = $self->{redis}->client;
    is($r->exists('foxgov:dlq'), 0, "$name: nothing dead-lettered")
        or diag(explain([ $r->xrange('foxgov:dlq', '-', '+', 'COUNT', 5) ]));
    $r->quit;

    # 5. foxgov verify of each tenant's ledger
    for my $t ($self->tenants) {
        my ($rc, $out, $err) = $self->{ledger} eq 'file'
            ? run_foxgov('verify', "$self->{dir}/ledger/$t/ledger.jsonl")
            : run_foxgov('verify', $self->{ledger}, '--tenant', $t);
        is($rc, 0, "$name: $t: foxgov verify") or diag($err);
    }

    # 6. the gateway: no crash, no alert but those expected
    my @bad = grep {
        /exited on signal (?!9\b)/
        || (/\[(?:alert|emerg|crit)\]/ && !/exited on signal 9\b/
            && !($o{alerts} && $_ =~ $o{alerts}))
        || /Sanitizer|: runtime error: /
    } split /\n/, $self->nginx->read_file('error.log')
                . $self->nginx->read_file('stderr.log');
    is(scalar @bad, 0, "$name: no crash, no unexpected alert")
        or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);

    my $st = join ', ', map { "$_: $status{$_}" } sort keys %status;
    diag(sprintf('%s: %d answers (%s); served %d, recorded %d, %d ledger '
                 . 'records; records %s; fault %.1fs, load %.1fs, '
                 . 'scenario %.1fs', $name, scalar @answers, $st,
                 scalar @served, $recorded, $records,
                 $o{counters} // $self->evidence_counters,
                 $load->{fault_seconds} // 0, $load->{seconds},
                 time() - $self->{t0}));

    return { served => scalar @served, recorded => $recorded,
             records => $records, statuses => \%status };
}

sub _lost_records {
    my ($self, $by, $lost) = @_;
    my $n = 0;
    for my $t ($self->tenants) {
        for my $x (keys %$lost) {
            $n += $_ for values %{ $by->{$t}{$x} // {} };
        }
    }
    return $n;
}

# Stop everything (nginx gracefully: its exit status is checked).
sub finish {
    my ($self) = @_;
    $self->{ledgerd}->stop(10) if $self->{ledgerd}->running;
    if ($self->{daemon}) {
        ok($self->stop_master($self->master), 'nginx stops on QUIT');
    }
    is($self->{gateway}->stop, 0, 'nginx stops cleanly');
    $self->{redis}->stop;
}


package FoxGov::Test::Faults::Load;

use Time::HiRes qw(sleep time);

sub new {
    my ($class, $f, $name, $deadline) = @_;
    return bless { f => $f, name => $name, deadline => $deadline,
                   base => 0 }, $class;
}

sub answers { return scalar $_[0]{f}->_answers($_[0]{name}) }

sub count {
    my ($self) = @_;
    my @a = $self->{f}->_answers($self->{name});
    return scalar @a;
}

# Remember how many answers came so far: wait_more counts from here.
sub mark { $_[0]{base} = $_[0]->count }

# Wait until $n more answers came than at the last mark (or the load's
# deadline); then mark.  True when they came.
sub wait_more {
    my ($self, $n) = @_;
    my $want = $self->{base} + $n;
    my $c;
    while (($c = $self->count) < $want && time() < $self->{deadline}) {
        sleep 0.05;
    }
    $self->{base} = $c;
    return $c >= $want;
}

# The answers so far: [kind, status, exec] each.
sub so_far { return $_[0]{f}->_answers($_[0]{name}) }

1;

__END__

=head1 NAME

FoxGov::Test::Faults - fault scenarios: bounded load, a fault, then
served == recorded

=head1 SYNOPSIS

    use FoxGov::Test::Faults;
    FoxGov::Test::Faults::requirements();

    my $f = FoxGov::Test::Faults->new;            # Redis, nginx, ledgerd
    my $load = $f->load(name => 'redis-kill', before => 40, after => 60,
        fault => sub {
            my ($l) = @_;
            $f->redis->kill9;
            $l->wait_more(30);                      # served meanwhile
            $f->redis->start;
        });
    $f->check($load);
    $f->finish;
    done_testing();

=head1 DESCRIPTION

C<new> starts Redis (FoxGov::Test::Redis), a gateway of two workers
(FoxGov::Test::Gateway with the standard policy, C<foxgov_redis> with
C<connect_timeout=300ms timeout=1s>, C<foxgov_spool>), and foxgov-ledgerd
in the background on C<file:DIR/ledger> (or the C<ledger =E<gt>>
PostgreSQL URI, with C<pg =E<gt>> the FoxGov::Test::Postgres).  With
C<strict =E<gt> 1> the http{} level says C<foxgov_evidence strict>; a
location C</async/> is always there with C<foxgov_evidence async>.

C<load> forks C<clients> (4) clients that call in turn: a model call of
tenant acme (ALLOW, 200), a model call of tenant beta that the policy
denies (403), a Slack tool call of beta (200), and in strict mode an
async model call of acme; a new connection each, each answer written as
C<kind status execution-id>.  Once C<before> answers came the C<fault>
sub runs (given the load, whose C<wait_more(N)> waits for N more
answers); when it returns, C<after> more answers are waited for, then the
clients stop.  Everything has a deadline.

C<check> waits (with deadlines) until the spools are empty and the
ledger holds every served call's records, stops ledgerd, and checks:
each served call (answered with an execution id) has its AuthContext,
PolicyDecisionRecord and call record in its tenant's ledger exactly once;
no record of any other call is there; the streams have nothing pending
or unread for the ledger's group; C<foxgov:dlq> does not exist;
C<foxgov verify> accepts each tenant's ledger; nginx's error log has no
crash and no alert but those allowed.  It prints one summary line
(C<diag>): answers by status, served, recorded, ledger records, time.

=cut
