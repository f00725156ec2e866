#!/usr/bin/perl

# conf/foxgov-ledgerd.conf, the example configuration, is one the daemon
# takes: with its Redis and ledger moved to this test's (and a checkpoint
# key given), foxgov-ledgerd --config runs it, appends the records in the
# streams, signs a checkpoint and the ledger verifies against it.  Its
# Redis asks for the password the config's password file holds.  The
# systemd unit starts the daemon with that file and with what it needs:
# the ledger directory of the config is the unit's StateDirectory (the one
# path it may write), the config and keys under /etc/foxgov, nothing
# under /var/log; systemd-analyze verify finds nothing to say about it.

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

my $password = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 32;
my $redis = FoxGov::Test::Redis->new(password => $password);
$redis->start;
open my $pw, '>', "$dir/redis.password" or die $!;
print $pw "$password\n";
close $pw;

my ($rc, undef, $err) = run_foxgov('keygen', '--kid', 'ckpt', '--out',
                                   $dir);
is($rc, 0, 'a checkpoint key') or diag($err);

# the example, pointed at this test's Redis and directory
open my $in, '<', "$top/conf/foxgov-ledgerd.conf" or die $!;
my $conf = do { local $/; <$in> };
close $in;
my ($ledger_dir) = $conf =~ m{^ledger\s+file:(\S+)$}m;
my ($key_path) = $conf =~ m{^# checkpoint-key\s+(\S+)$}m;
my ($pw_path) = $conf =~ m{^redis-password-file\s+(\S+)$}m;
my $n = 0;
$n += $conf =~ s/^redis\s+\S+$/redis ${\ $redis->addr}/m;
$n += $conf =~ s{^redis-password-file\s+\S+$}{redis-password-file $dir/redis.password}m;
$n += $conf =~ s{^ledger\s+file:\S+$}{ledger file:$dir/ledger}m;
$n += $conf =~ s{^# checkpoint-key\s+\S+$}{checkpoint-key $dir/ckpt.pem}m;
is($n, 4, 'the example names redis, its password file, ledger and checkpoint-key');
is($ledger_dir, '/var/lib/foxgov/ledger', 'the ledger is /var/lib/foxgov/ledger');
like($key_path, qr{^/etc/foxgov/}, 'the checkpoint key is under /etc/foxgov');
like($pw_path, qr{^/etc/foxgov/}, 'the password file is under /etc/foxgov');
unlike($conf, qr{/var/log/}, 'nothing under /var/log');
open my $out, '>', "$dir/ledgerd.conf" or die $!;
print $out $conf;
close $out;

{
    local $ENV{REDISCLI_AUTH} = $password;     # feed's redis-cli
    feed($redis, 'acme', flows('acme', 20, salt => 'conf'));
}

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
my ($state) = $unit =~ /^StateDirectory=(\S+)$/m;
is("/var/lib/$state", $ledger_dir,
   'its StateDirectory is the ledger directory of the config');
like($unit, qr/^ProtectSystem=strict$/m, 'everything else read-only');
my @rw = $unit =~ /^(ReadWritePaths=.*)$/mg;
is_deeply(\@rw, [], 'and no ReadWritePaths: the ledger is all it writes');
unlike($unit, qr/^(?:LogsDirectory|StandardOutput=file|StandardError=file)/m,
       'no log file (stderr goes to the journal)');

SKIP: {
    my ($sa) = grep { -x } map { "$_/systemd-analyze" } split /:/, $ENV{PATH};
    skip 'no systemd-analyze', 2 unless $sa;
    # the unit as installed, with the daemon where this build has it
    (my $u = $unit) =~ s{^ExecStart=/usr/bin/foxgov-ledgerd }
                        {ExecStart=$bin }m;
    open my $uf, '>', "$dir/foxgov-ledgerd.service" or die $!;
    print $uf $u;
    close $uf;
    my $said = `$sa verify $dir/foxgov-ledgerd.service 2>&1`;
    is($? >> 8, 0, 'systemd-analyze verify accepts the unit');
    is($said, '', '... without a word') or diag($said);
}

$redis->stop;
done_testing();
