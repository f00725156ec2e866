#!/usr/bin/perl

# conf/foxgov-ledgerd.conf, the example configuration, is one the daemon
# takes: with its Redis and ledger moved to this test's (and a checkpoint
# key given), foxgov-ledgerd --config runs it, appends the records in the
# streams, signs a checkpoint and the ledger verifies against it.  The
# systemd unit starts the daemon with that file and with what it needs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use Test::More;

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $top = "$FindBin::Bin/..";
my $dir = tempdir('foxgov-confld-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});

my $redis = FoxGov::Test::Redis->new;
$redis->start;

my ($rc, undef, $err) = run_foxgov('keygen', '--kid', 'ckpt', '--out',
                                   $dir);
is($rc, 0, 'a checkpoint key') or diag($err);

# the example, pointed at this test's Redis and directory
open my $in, '<', "$top/conf/foxgov-ledgerd.conf" or die $!;
my $conf = do { local $/; <$in> };
close $in;
my $n = 0;
$n += $conf =~ s/^redis\s+\S+$/redis ${\ $redis->addr}/m;
$n += $conf =~ s{^ledger\s+file:\S+$}{ledger file:$dir/ledger}m;
$n += $conf =~ s{^# checkpoint-key\s+\S+$}{checkpoint-key $dir/ckpt.pem}m;
is($n, 3, 'the example names redis, ledger and checkpoint-key');
open my $out, '>', "$dir/ledgerd.conf" or die $!;
print $out $conf;
close $out;

feed($redis, 'acme', flows('acme', 20, salt => 'conf'));

my $log = "$dir/ledgerd.log";
my $bin = FoxGov::Test::Ledgerd::bin();
system("$bin --config $dir/ledgerd.conf --once > $log 2>&1");
is($? >> 8, 0, 'foxgov-ledgerd runs the example configuration');
my $text = do { local (@ARGV, $/) = $log; <> };
like($text, qr/stopping: 60 appended/, 'and appends the records');

my ($vrc, $vout, $verr) = run_foxgov('verify', "$dir/ledger/acme/ledger.jsonl",
    '--checkpoints', "$dir/ledger/acme/checkpoints", '--trusted-key',
    "$dir/ckpt.jwks.json");
is($vrc, 0, 'the ledger verifies against its signed checkpoint')
    or diag($verr);
like($vout, qr/60 records.*1 checkpoint/, 'all of it');

# the unit: the daemon with that file, stopped with SIGTERM, its state
# directory private
open $in, '<', "$top/conf/systemd/foxgov-ledgerd.service" or die $!;
my $unit = do { local $/; <$in> };
close $in;
like($unit, qr{^ExecStart=/usr/bin/foxgov-ledgerd --config /etc/foxgov/foxgov-ledgerd\.conf$}m,
     'the unit runs the daemon with the config file');
like($unit, qr/^KillSignal=SIGTERM$/m, 'and stops it with SIGTERM');
like($unit, qr/^StateDirectoryMode=0700$/m, 'a private state directory');
like($unit, qr/^User=foxgov$/m, 'not as root');

$redis->stop;
done_testing();
