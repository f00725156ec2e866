#!/usr/bin/perl

# THROTTLE under load, across workers and reloads (ngx_http_foxgov_zone.c):
#
#   (a) two workers with reuseport, 60 concurrent calls from 6 clients
#       against a limit of 20: exactly 20 pass and 40 are refused, the
#       passes are spread over both workers, every 200 read a distinct
#       count 0..19 (the take is atomic), every 429 has Retry-After and
#       read a count >= 20;
#   (b) the counters survive "nginx -s reload": once the old workers
#       have exited, the new ones still refuse the same tenant (reading
#       the same count) and serve another one;
#   (c) a call refused for another reason (a DENY in the same bundle, a
#       credential the tenant may not use) gives its slot back;
#   (d) a tokens limit: calls pass until the usage recorded by the passed
#       calls reaches the limit.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Nginx qw(module_path nginx_binary);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway qw(standard_policy throttle_window);

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'nginx missing' unless -x nginx_binary();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no /proc (the workers are found there)'
    unless -r '/proc/self/stat';

my $JSON = JSON::PP->new->utf8->canonical;

# Windows are aligned to the epoch (zone.c): a window of about a day whose
# current window has at least an hour left, so no counter is reset while
# the test runs (it takes seconds) and nothing waits for a new window.
my $WINDOW = throttle_window(86400, 3600);
my $BURST = 20;

my $policy = standard_policy();
unshift @{ $policy->{rules} },
    { id => 'burst', match => { workspace_id => 'ws-burst' },
      decision => 'THROTTLE',
      limits => { requests => $BURST, window_seconds => $WINDOW } },
    { id => 'mixed', match => { workspace_id => 'ws-mixed' },
      decision => 'THROTTLE',
      limits => { requests => 3, window_seconds => $WINDOW } },
    { id => 'deny-gpt-4o-denied', match => { kind => 'model',
        model => 'gpt-4o-denied' },
      decision => 'DENY' },
    { id => 'tokens', match => { workspace_id => 'ws-tokens' },
      decision => 'THROTTLE',
      limits => { tokens => 30, window_seconds => $WINDOW } };

my $g = FoxGov::Test::Gateway->new(policy => $policy, workers => 2,
                                   listen => 'reuseport');
$g->start;

sub chat {
    my (%o) = @_;
    return { model => $o{model} // 'gpt-4o',
             messages => [ { role => 'user',
                             content => $o{content} // 'hello there' } ] };
}

sub exec_id { return $_[0]{headers}{'foxgov-execution-id'} // '' }

# gateway.log: '$pid $status $foxgov_decision $foxgov_tenant
# $foxgov_execution_id $foxgov_trace_id $foxgov_route'
sub access_log {
    my @l;
    for (split /\n/, $g->nginx->read_file('gateway.log')) {
        my @f = split / /;
        push @l, { pid => $f[0], status => $f[1], decision => $f[2],
                   tenant => $f[3], exec => $f[4] };
    }
    return @l;
}

# The worker that served a call, from the access log, written in the log
# phase: nginx closes a connection lingering, so the client has its answer
# before that.  Waits until $deadline (default 5 s from now); a batch of
# look-ups shares one deadline.
sub pid_of {
    my ($exec, $deadline) = @_;
    return undef unless $exec && $exec ne '-';
    $deadline //= time() + 5;
    while (1) {
        my ($l) = grep { $_->{exec} eq $exec } access_log();
        return $l->{pid} if $l;
        return undef if time() >= $deadline;
        sleep 0.05;
    }
}

# The call's PolicyDecisionRecord (emitted before the call is answered).
sub decision_of {
    my ($exec, $deadline) = @_;
    return undef unless $exec && $exec ne '-';
    $deadline //= time() + 5;
    while (1) {
        my ($d) = grep { $_->{type} eq 'PolicyDecisionRecord' }
                  $g->records_for($exec);
        return $d->{record} if $d;
        return undef if time() >= $deadline;
        sleep 0.05;
    }
}


# The log phase of a call is over once nginx has logged closing its
# connection: the module adds a call's tokens to its THROTTLE counters
# right after it logs the call record, in the same handler, and nginx
# closes the connection after the log phase.  $from: the error.log
# offset before the call was sent.
sub wait_log_phase {
    my ($exec, $from, $deadline) = @_;
    $deadline //= time() + 5;
    my $path = $g->dir . '/error.log';
    while (1) {
        if (open my $fh, '<:raw', $path) {
            seek $fh, $from, 0;
            local $/;
            my $log = <$fh> // '';
            close $fh;
            return 1
                if $log =~ /\*(\d+) foxgov evidence \Q$exec\E \w+CallRecord /
                && $log =~ /\*$1 close http connection: /;
        }
        return 0 if time() >= $deadline;
        sleep 0.02;
    }
}

# $n clients, each sending $per calls on connections of its own, all
# released at once; returns [{status, exec, retry_after, client}, ...].
sub burst {
    my (%o) = @_;
    my ($n, $per, $tok) = @o{qw(clients per token)};

    pipe(my $gate_r, my $gate_w) or die "pipe: $!";
    my @kids;
    for my $c (1 .. $n) {
        my $out = $g->dir . "/burst-$$-$c-" . int(rand 1e9);
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            # never back into the test: no END blocks, no DESTROY
            eval {
                close $gate_w;
                my $x = <$gate_r>;          # EOF when the gate opens
                open my $fh, '>', $out or die "$out: $!";
                for (1 .. $per) {
                    my $r = eval {
                        $g->request(POST => '/v1/chat/completions',
                                    token => $tok, body => chat(),
                                    timeout => 10);
                    } // {};
                    print {$fh} join("\t", $r->{status} // 'none',
                        exec_id($r) || '-',
                        $r->{headers}{'retry-after'} // '-'), "\n";
                }
                close $fh or die "$out: $!";
                1;
            } or POSIX::_exit(1);
            POSIX::_exit(0);
        }
        push @kids, [ $pid, $out, $c ];
    }
    close $gate_r;
    close $gate_w;                          # go

    my $deadline = time() + 60;
    my @res;
    for my $k (@kids) {
        while (waitpid($k->[0], POSIX::WNOHANG()) == 0) {
            if (time() > $deadline) {
                kill 'KILL', $k->[0];
                waitpid($k->[0], 0);
                diag("client $k->[2] killed after 60s");
                last;
            }
            sleep 0.05;
        }
        open my $fh, '<', $k->[1] or next;
        while (<$fh>) {
            chomp;
            my ($st, $ex, $ra) = split /\t/;
            push @res, { status => $st, exec => $ex, retry_after => $ra,
                         client => $k->[2] };
        }
        close $fh;
    }
    return @res;
}

# --------------------------------------------- (a) a burst over 2 workers

my %all_pids;

{
    my %pids200;
    my @tenants = ('acme', 'acme-again');

    for my $try (0 .. 1) {
        my $tenant = $tenants[$try];
        my $tok = $g->token(tenant => $tenant, workspace => 'ws-burst');
        my $name = "burst ($tenant)";

        my @res = burst(clients => 6, per => 10, token => $tok);
        is(scalar @res, 60, "$name: 60 calls answered");

        my %st;
        $st{ $_->{status} }++ for @res;
        is($st{200} // 0, $BURST, "$name: exactly $BURST got 200")
            or diag(explain(\%st));
        is($st{429} // 0, 60 - $BURST, "$name: exactly 40 got 429")
            or diag(explain(\%st));

        my (@seen200, @bad429, @noretry, @nopid, %p200, %pall);
        my $deadline = time() + 10;
        for my $r (@res) {
            my $pid = pid_of($r->{exec}, $deadline);
            if (defined $pid) {
                $pall{$pid}++;
                $all_pids{$pid}++;
            } else {
                push @nopid, $r->{exec};
            }
            my $d = decision_of($r->{exec}, $deadline);
            my $c = $d ? $d->{input}{counters}{burst}{requests} : undef;
            if ($r->{status} eq '200') {
                $p200{$pid}++ if defined $pid;
                push @seen200, $c // -1;
            } elsif ($r->{status} eq '429') {
                push @noretry, $r->{exec} unless $r->{retry_after} eq $WINDOW;
                push @bad429, [ $r->{exec}, $c, $d && $d->{decision} ]
                    unless defined $c && $c >= $BURST
                           && ($d->{decision} // '') eq 'THROTTLE';
            }
        }

        is_deeply([ sort { $a <=> $b } @seen200 ], [ 0 .. $BURST - 1 ],
                  "$name: the 200s read the counts 0..19, each once "
                  . '(taken atomically across workers)');
        is(scalar @nopid, 0, "$name: every call is in the access log, with "
           . 'the pid of its worker') or diag(explain(\@nopid));
        is(scalar @noretry, 0, "$name: every 429 has Retry-After: $WINDOW")
            or diag(explain(\@noretry));
        is(scalar @bad429, 0, "$name: every 429's PolicyDecisionRecord is "
           . "THROTTLE with input.counters.burst.requests >= $BURST")
            or diag(explain(\@bad429));

        note("$name: calls per worker pid: " . join(', ',
             map { "$_=$pall{$_}" } sort keys %pall)
             . '; 200s per pid: ' . join(', ',
             map { "$_=$p200{$_}" } sort keys %p200));

        %pids200 = %p200;
        last if keys %p200 >= 2;
        diag("$name: every 200 came from one worker; again with new "
             . 'connections and a fresh tenant') if $try == 0;
    }

    cmp_ok(scalar keys %all_pids, '>=', 2,
           'the calls were served by both workers');
    cmp_ok(scalar keys %pids200, '>=', 2,
           'the 200s were served by both workers: the limit held across '
           . 'workers');
}

# ------------------------------------------------ (b) across a reload

{
    my $master = $g->nginx->read_file('nginx.pid') =~ s/\s+//gr;
    my @old = $g->workers;
    is(scalar @old, 2, 'two workers before the reload') or diag("@old");
    my %old = map { $_ => 1 } @old;

    $g->nginx->reload;

    # until the old workers have exited (they have no connection left)
    # and two new ones run: from then on only the new ones can answer
    my @new;
    my $deadline = time() + 15;
    while (time() < $deadline) {
        my @w = $g->workers;
        if (@w == 2 && !grep { $old{$_} } @w) {
            @new = @w;
            last;
        }
        sleep 0.05;
    }
    is(scalar @new, 2, 'after reload: the old workers are gone, two new '
       . 'ones run (' . join(',', @new) . ')')
        or diag(join(' ', $g->workers) . "\n"
                . ($g->nginx->read_file('error.log') =~ /(.{0,2000})\z/s)[0]);
    my %new = map { $_ => 1 } @new;
    is($g->nginx->read_file('nginx.pid') =~ s/\s+//gr, $master,
       'the same master');

    my $tok = $g->token(tenant => 'acme', workspace => 'ws-burst');
    my (@st, @by, @counts);
    for (1 .. 6) {
        my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
                            body => chat());
        push @st, $r->{status} // 'none';
        push @by, pid_of(exec_id($r)) // '?';
        my $d = decision_of(exec_id($r));
        push @counts, $d ? $d->{input}{counters}{burst}{requests} : undef;
    }
    is_deeply(\@st, [ (429) x 6 ],
              'after reload: the same tenant and workspace is still 429');
    is(scalar(grep { !$new{$_} } @by), 0,
       'after reload: refused by the new workers (' . join(',', @by) . ')');
    is_deeply(\@counts, [ ($BURST) x 6 ],
              "after reload: the counter read is still $BURST");

    my $r = $g->request(POST => '/v1/chat/completions',
        token => $g->token(tenant => 'other', workspace => 'ws-burst'),
        body => chat());
    is($r->{status}, 200, 'after reload: another tenant is not throttled')
        or diag($r->{raw});
    my $d = decision_of(exec_id($r));
    is($d && $d->{input}{counters}{burst}{requests}, 0,
       'after reload: the other tenant\'s counter starts at 0');
    ok($new{ pid_of(exec_id($r)) // '' },
       'after reload: served by a new worker');
}

# --------------------------------- (c) a call refused otherwise is free

{
    my $tok = $g->token(tenant => 'acme', workspace => 'ws-mixed');

    my (@st, @counts, @dec);
    for (1 .. 10) {
        my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
                            body => chat(model => 'gpt-4o-denied'));
        push @st, $r->{status};
        my $d = decision_of(exec_id($r));
        push @dec, $d && $d->{decision};
        push @counts, $d ? $d->{input}{counters}{mixed}{requests} : undef;
    }
    is_deeply(\@st, [ (403) x 10 ], 'mixed: DENY outranks THROTTLE: 403 x10');
    is_deeply(\@dec, [ ('DENY') x 10 ], 'mixed: decided DENY');
    is_deeply(\@counts, [ (0) x 10 ],
              'mixed: THROTTLE-matched, and each denied call gave its '
              . 'slot back (the count stays 0)');

    # refused after an ALLOW: /iso/ has a credential for acme only
    my $beta = $g->token(tenant => 'beta', workspace => 'ws-mixed');
    my @r = map { $g->request(POST => '/iso/v1/chat/completions',
                              token => $beta, body => chat()) } 1 .. 5;
    is_deeply([ map { ($_->{status} // 'none') . ' '
                      . ($_->{json} ? $_->{json}{error}{code} // '-' : '-') } @r ],
              [ ('403 credential_unavailable') x 5 ],
              'mixed: no credential for beta: 403 credential_unavailable x5');
    is_deeply([ map { my $d = decision_of(exec_id($_));
                      $d ? ($d->{decision} // 'none') . ' '
                           . ($d->{input}{counters}{mixed}{requests}
                              // 'none')
                         : 'no decision' } @r ],
              [ ('ALLOW 0') x 5 ],
              'mixed: beta\'s calls were ALLOWed, each taking a slot (and '
              . 'reading 0: the one before gave its slot back)');

    for my $who ([ acme => $tok ], [ beta => $beta ]) {
        my @r = map { $g->request(POST => '/v1/chat/completions',
                                  token => $who->[1], body => chat()) }
                1 .. 4;
        is_deeply([ map { $_->{status} } @r ], [ 200, 200, 200, 429 ],
                  "mixed ($who->[0]): then 3 good calls get 200, the "
                  . '4th 429');
        is_deeply([ map { my $d = decision_of(exec_id($_));
                          $d && $d->{input}{counters}{mixed}{requests} } @r ],
                  [ 0, 1, 2, 3 ], "mixed ($who->[0]): counts 0, 1, 2, 3");
    }
}

# ---------------------------------------------------------- (d) tokens

{
    my $tok = $g->token(tenant => 'acme', workspace => 'ws-tokens');
    my $limit = 30;

    my ($sum, $n200, @trace) = (0, 0);
    my $predicted;
    my $last;
    for my $i (1 .. 12) {
        my $from = -s $g->dir . '/error.log';
        my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
            body => chat(content => join(' ', ('word') x $i)));
        my $exec = exec_id($r);
        my $d = decision_of($exec);
        my $seen = $d ? $d->{input}{counters}{tokens}{tokens} : undef;
        push @trace, "$i: status $r->{status}, sum before $sum, read "
                     . ($seen // 'undef');

        is($seen, $sum, "tokens call $i: the decision read the tokens of "
           . "the calls before it ($sum)");

        if ($r->{status} ne '200') {
            $last = $r;
            last;
        }

        $n200++;
        my $call = $g->wait_call_record($exec);
        my $t = $call && $call->{record}{usage}{total_tokens};
        is($t, $r->{json}{usage}{total_tokens},
           "tokens call $i: the ModelCallRecord has the response's usage");
        $sum += $t // 0;
        $predicted //= $n200 if $sum >= $limit;
        ok(wait_log_phase($exec, $from),
           "tokens call $i: its log phase (which adds its tokens) is over");
    }

    ok($last, 'tokens: a call was refused') or diag(join "\n", @trace);
    is($last && $last->{status}, 429, 'tokens: refused with 429');
    is($last && $last->{headers}{'retry-after'}, $WINDOW,
       'tokens: Retry-After');
    is($n200, $predicted, "tokens: $n200 calls passed, as the usage "
       . "predicts (the sum crosses $limit at call "
       . ($predicted // 'never') . ')') or diag(join "\n", @trace);
    cmp_ok($sum, '>=', $limit, "tokens: the passed calls used $sum >= "
           . "$limit tokens");
    my $d = $last && decision_of(exec_id($last));
    ok($d && $d->{input}{counters}{tokens}
       && exists $d->{input}{counters}{tokens}{requests}
       && !defined $d->{input}{counters}{tokens}{requests},
       'tokens: the tokens-only rule\'s counter has requests null');
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
                        body => chat());
    is($r->{status}, 429, 'tokens: still 429');
}

is($g->stop, 0, 'nginx stops cleanly');
my ($ok, @bad) = $g->nginx->error_log_ok();
ok($ok, 'no alerts in error.log') or diag(join "\n", @bad);

done_testing();
