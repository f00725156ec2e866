#!/usr/bin/perl

# The policy bundle while requests are served (DESIGN.md "Policy bundle"):
# a new signed bundle is swapped in by each worker's check, a corrupt, an
# unsigned or a foreign-signed one is refused (and logged) and the last
# good one kept, a bundle not checked successfully within its ttl is stale
# and governed calls fail closed (503), a good one brings service back;
# nginx starts without a bundle and answers 503 until one appears; and
# "nginx -s reload" at any moment under load loses no request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(:all);
use FoxGov::Test::Gateway qw(standard_policy);

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $body = { model => 'gpt-4o', messages => [ { role => 'user',
                                                content => 'hi' } ] };

sub deny_gpt4o {
    my $p = standard_policy();
    unshift @{ $p->{rules} }, { id => 'deny-gpt-4o', match => {
        model => 'gpt-4o' }, decision => 'DENY' };
    return $p;
}

# The status and, from its decision record, the bundle revision of a call.
sub probe {
    my ($g) = @_;
    my $r = $g->request(POST => '/v1/chat/completions', token => $g->{tok},
                        body => $body);
    my $exec = $r->{headers}{'foxgov-execution-id'} // '';
    my ($dec) = grep { $_->{type} eq 'PolicyDecisionRecord' }
                $g->records_for($exec);
    my $b = $dec ? $dec->{record}{bundle} : undef;
    return ($r->{status} // 0, $b ? $b->{revision} : undef, $r);
}

# Probe until cond(status, revision) holds or timeout; returns the last.
sub wait_for {
    my ($g, $cond, $timeout) = @_;
    my $deadline = time() + $timeout;
    my @last;
    while (time() < $deadline) {
        @last = probe($g);
        return @last if $cond->(@last);
        sleep 0.2;
    }
    return @last;
}

# A child sending calls one after another until told to stop; it writes
# one status per line.
sub load_start {
    my ($g) = @_;
    my $out = $g->dir . "/load-$$-" . int(rand 1e6);
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        $fh->autoflush(1);
        my $deadline = time() + 60;
        while (time() < $deadline && !-e "$out.stop") {
            my $r = $g->request(POST => '/v1/chat/completions',
                token => $g->{tok}, body => $body, timeout => 5);
            print {$fh} (($r->{status} // 'none'), "\n");
            # about 50 calls a second: the debug log the evidence is read
            # from grows by some 10 KiB a call
            sleep 0.02;
        }
        close $fh;
        POSIX::_exit(0);
    }
    return { pid => $pid, out => $out };
}

sub load_stop {
    my ($l) = @_;
    open my $fh, '>', "$l->{out}.stop";
    close $fh;
    waitpid $l->{pid}, 0;
    open $fh, '<', $l->{out} or return ();
    chomp(my @st = <$fh>);
    return @st;
}

# ---------------------------------------------- swap, refuse, stale

{
    my $g = FoxGov::Test::Gateway->new(ttl => '4s', check => '1s',
                                       workers => 2);
    $g->start;
    $g->{tok} = $g->token;

    my ($st, $rev) = probe($g);
    is($st, 200, 'r1: allowed');
    is($rev, 'r1', 'r1: the decision names the bundle revision');

    my $load = load_start($g);

    $g->write_bundle(deny_gpt4o(), revision => 'r2');
    ($st, $rev) = wait_for($g, sub { $_[0] == 403 }, 6);
    is($st, 403, 'r2 swapped in under load: the new rule decides');
    is($rev, 'r2', 'r2: recorded');

    # refused: corrupt bytes, unsigned, signed by a stranger
    my ($stranger) = keygen($g->dir . '/keys', 'stranger', 'EdDSA');
    my @bad = (
        [ 'corrupt', sub {
            my $p = $g->dir . '/corrupt.tar.gz';
            open my $fh, '>', $p or die $!;
            print {$fh} "\x1f\x8b this is not a bundle";
            close $fh;
            rename $p, $g->bundle_path or die $!;
        } ],
        [ 'unsigned', sub {
            my $out = build_bundle(dir => $g->dir . '/unsigned-src',
                policy => standard_policy(), revision => 'r-unsigned',
                tar => 1, out => $g->dir . '/unsigned.tar.gz');
            rename $out, $g->bundle_path or die $!;
        } ],
        [ 'foreign-signed', sub {
            $g->write_bundle(standard_policy(), revision => 'r-foreign',
                             key => $stranger);
        } ],
    );

    my $good = 'r2';

    for my $b (@bad) {
        my ($name, $write) = @$b;
        my $t0 = time();
        $write->();
        sleep 1.5;
        ($st, $rev) = probe($g);
        is($st, 403, "$name bundle refused: the last good one still "
           . 'decides') if time() - $t0 < 3.5;
        is($rev, $good, "$name bundle refused: $good recorded")
            if time() - $t0 < 3.5;
        like($g->nginx->read_file('error.log'),
             qr/policy bundle "[^"]+" refused: /,
             "$name bundle: refused with a log line");

        # a good one again, so the next case starts fresh
        $good = "r2-after-$name";
        $g->write_bundle(deny_gpt4o(), revision => $good);
        ($st, $rev) = wait_for($g, sub { ($_[1] // '') eq $good }, 5);
        is($rev, $good, "after the $name bundle a good one is taken");
    }

    # stale: a refused bundle stays in place beyond the ttl
    $bad[0][1]->();
    ($st) = wait_for($g, sub { $_[0] == 503 }, 8);
    is($st, 503, 'stale beyond ttl: governed calls fail closed');
    my (undef, undef, $r) = probe($g);
    is($r->{json}{error}{code}, 'policy_unavailable', 'stale: code');
    like($r->{json}{error}{message}, qr/stale/, 'stale: says so');

    $g->write_bundle(standard_policy(), revision => 'r3');
    ($st, $rev) = wait_for($g, sub { $_[0] == 200 }, 5);
    is($st, 200, 'a good bundle brings service back');
    is($rev, 'r3', 'r3: recorded');

    unlink $g->bundle_path;
    ($st) = wait_for($g, sub { $_[0] == 503 }, 8);
    is($st, 503, 'bundle removed: 503 after the ttl');

    $g->write_bundle(standard_policy(), revision => 'r4');
    ($st, $rev) = wait_for($g, sub { $_[0] == 200 }, 5);
    is($rev, 'r4', 'bundle back: r4 decides');

    my @st = load_stop($load);
    cmp_ok(scalar @st, '>', 20, 'load: calls were made throughout');
    my @odd = grep { !/^(200|403|503)$/ } @st;
    is(scalar @odd, 0, 'load: every call got 200, 403 or 503, none failed')
        or diag("odd: @odd[0 .. ($#odd < 9 ? $#odd : 9)]");

    is($g->stop, 0, 'nginx stops cleanly');
    my ($ok, @alerts) = $g->nginx->error_log_ok();
    ok($ok, 'no alerts') or diag(join "\n", @alerts);
}

# ---------------------------------------------- no bundle at start

{
    my $g = FoxGov::Test::Gateway->new(ttl => '4s', check => '1s');
    unlink $g->bundle_path;
    $g->start;
    $g->{tok} = $g->token;

    like($g->nginx->read_file('error.log'),
         qr/\[warn\].*policy bundle "[^"]+" is not there/,
         'no bundle at start: a warning, nginx runs');
    my ($st, $rev, $r) = probe($g);
    is($st, 503, 'no bundle: 503');
    is($r->{json}{error}{code}, 'policy_unavailable', 'no bundle: code');
    my $exec = $r->{headers}{'foxgov-execution-id'};
    my ($dec) = grep { $_->{type} eq 'PolicyDecisionRecord' }
                $g->records_for($exec);
    ok($dec && !defined $dec->{record}{bundle},
       'no bundle: recorded with bundle null');
    ok($dec && grep({ $_->{gate} eq 'policy' && $_->{result} eq 'error' }
                    @{ $dec->{record}{gates_evaluated} }),
       'no bundle: gate policy = error');

    $g->write_bundle(standard_policy(), revision => 'late');
    ($st, $rev) = wait_for($g, sub { $_[0] == 200 }, 5);
    is($rev, 'late', 'a bundle that appears later is picked up');

    is($g->stop, 0, 'nginx stops cleanly');
}

# ------------------------------------------------- reload under load

{
    my $g = FoxGov::Test::Gateway->new(workers => 2);
    $g->start;
    $g->{tok} = $g->token;

    my $load = load_start($g);
    for (1 .. 4) {
        sleep 0.4;
        $g->nginx->reload;
    }
    sleep 1;
    my @st = load_stop($load);

    cmp_ok(scalar @st, '>', 10, 'reload: calls were made throughout');
    is(scalar(grep { $_ ne '200' } @st), 0,
       'reload: every call under four reloads was served');
    is($g->stop, 0, 'nginx stops cleanly after reloads');
    my ($ok, @alerts) = $g->nginx->error_log_ok();
    ok($ok, 'reload: no alerts') or diag(join "\n", @alerts);
}

done_testing();
