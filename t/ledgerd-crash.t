#!/usr/bin/perl

# foxgov-ledgerd SIGKILLed at random points while it appends 50,001
# records (16,667 calls), and started again: sometimes under the same
# consumer name (it reads its own pending entries back), sometimes under
# another (it claims the dead one's with XAUTOCLAIM).  At the end the
# ledger verifies and holds every record exactly once.  Bounded: at most
# 12 kills, each run at most a few seconds, the whole at most a few
# minutes.  FOXGOV_CRASH_SEED replays one run's kill times.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $CALLS = 16_667;
my $seed = $ENV{FOXGOV_CRASH_SEED} // int(rand(1_000_000));
srand($seed);
note("FOXGOV_CRASH_SEED=$seed");

my $dir = tempdir('foxgov-crash-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
my $redis = FoxGov::Test::Redis->new;
$redis->start;
my $r = $redis->client;

my @recs = flows('acme', $CALLS, salt => "crash-$seed");
my %fed = map { $_->[1] => 1 } @recs;
# fed in four parts, so some arrive while the daemon runs and dies
my @parts = map { [ splice(@recs, 0, int(@recs / (4 - $_)) ) ] } 0 .. 3;
feed($redis, 'acme', @{ shift @parts });

my $ledger = "$dir/ledger/acme/ledger.jsonl";
my $kills = 0;
my $t0 = time();

for my $round (1 .. 12) {
    # the same name twice in a row, then another: both ways back
    my $consumer = 'ledgerd-' . int(($round + 1) / 3);
    my $d = FoxGov::Test::Ledgerd->new(redis => $redis,
        ledger => "file:$dir/ledger", log => "$dir/ledgerd.log",
        args => [ '--consumer', $consumer, '--claim-idle', '300ms',
                  '--block', '100ms', '--batch', 500 + int(rand(1000)) ]);
    $d->start;
    feed($redis, 'acme', @{ shift @parts }) if @parts && rand() < 0.6;
    sleep(0.05 + rand(0.6));
    $d->kill9;
    $kills++;
    last if !@parts && $r->xlen('foxgov:ev:{acme}') == 0;
}
feed($redis, 'acme', @{ shift @parts }) while @parts;

# then one that is left to finish (claiming what the last one held)
my $last = FoxGov::Test::Ledgerd->new(redis => $redis,
    ledger => "file:$dir/ledger", log => "$dir/ledgerd.log",
    args => [ '--consumer', 'finisher', '--claim-idle', '300ms' ]);
sleep 0.4;                                  # the dead ones are idle now
is($last->run_once, 0, "after $kills SIGKILLs, a run to the end");
note(sprintf('%.1f s in all', time() - $t0));

my ($rc, $out, $err) = run_foxgov('verify', $ledger);
is($rc, 0, 'the ledger verifies') or diag($err);
my $n = scalar keys %fed;
like($out, qr/verified: tenant acme, $n records/,
     "all $n records are in it");

my (%seen, $twice, $stranger);
open my $fh, '<', $ledger or die "$ledger: $!";
while (my $l = <$fh>) {
    my ($h) = $l =~ /"envelope_hash":"([0-9a-f]{64})"/ or next;
    $twice++ if $seen{$h}++;
    $stranger++ unless $fed{$h};
}
close $fh;
is($twice // 0, 0, 'none twice');
is($stranger // 0, 0, 'none that was not fed');
is(scalar(grep { !$seen{$_} } keys %fed), 0, 'none missing');

my $log = do { local (@ARGV, $/) = "$dir/ledgerd.log"; <> };
my @torn = $log =~ /torn last entry/g;
note(scalar(@torn) . ' torn tails cut; '
     . scalar(() = $log =~ /claimed \d+ entries/g) . ' claims');
is(scalar(() = $log =~ /\[error\]/g), 0, 'no error logged')
    or diag(join "\n", grep { /\[error\]/ } split /\n/, $log);
is($r->xlen('foxgov:ev:{acme}'), 0, 'the stream is trimmed')
    or diag(explain [ $r->xpending('foxgov:ev:{acme}', 'foxgov-ledger') ],
            explain [ $r->xinfo('GROUPS', 'foxgov:ev:{acme}') ]);
is($r->exists('foxgov:dlq'), 0, 'nothing dead-lettered');

$redis->stop;
done_testing();
