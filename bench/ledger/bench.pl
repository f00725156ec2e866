#!/usr/bin/perl

# bench/ledger/bench.pl -- what bench/ledger/run measures (see its header):
# foxgov-ledgerd's append rate into each backend with its durability on,
# and foxgov verify's rate, in one run on this machine.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Time::HiRes qw(time);

my $repo;
BEGIN { $repo = abs_path(dirname(abs_path($0)) . '/../..') }
use lib "$repo/t/lib";

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Postgres;
use FoxGov::Test::Redis;

my %o = (records => 300_000, verify_records => 1_000_000, batch => 4000,
         pg => 1);
while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--records') { $o{records} = shift @ARGV }
    elsif ($a eq '--verify-records') { $o{verify_records} = shift @ARGV }
    elsif ($a eq '--batch') { $o{batch} = shift @ARGV }
    elsif ($a eq '--no-pg') { $o{pg} = 0 }
    else { die "bench.pl: unknown argument $a\n" }
}
for (qw(records verify_records batch)) {
    die "bench.pl: --$_ must be a whole number >= 3\n"
        unless $o{$_} =~ /^\d+$/ && $o{$_} >= 3;
}

my $B = "$repo/build";
my $ledgerd = "$B/bin/foxgov-ledgerd";
my $foxgov = "$B/bin/foxgov";
my $dir = tempdir('ledger-XXXXXXXX', DIR => "$B/bench", CLEANUP => 1);

sub say { print @_, "\n" }

# A Redis with the quickstart's durability: appendonly, appendfsync always.
my $redis = FoxGov::Test::Redis->new;
$redis->start;

# Records of n/3 calls (three records each), fed into tenant's stream;
# returns once Redis has no AOF rewrite running (feeding hundreds of MB
# starts one, and a rewrite in the background of a timed run measures the
# rewrite, not the daemon).
sub fill {
    my ($tenant, $n, $salt) = @_;
    my @recs = flows($tenant, int(($n + 2) / 3), salt => $salt);
    feed($redis, $tenant, @recs);
    my $r = $redis->client;
    my $deadline = time() + 120;
    while (time() < $deadline) {
        my $info = $r->info('persistence');
        last unless $info->{aof_rewrite_in_progress}
                    || $info->{aof_rewrite_scheduled};
        select(undef, undef, undef, 0.2);
    }
    $r->quit;
    return scalar @recs;
}

# Run foxgov-ledgerd --once on the ledger; (records, seconds, cpu seconds).
sub append_run {
    my ($ledger, $group, $n) = @_;
    my $t0 = time();
    my @cpu0 = (times())[2, 3];
    my $rc = system($ledgerd, '--redis', $redis->addr, '--ledger', $ledger,
                    '--group', $group, '--consumer', 'bench', '--batch',
                    $o{batch}, '--once', '--log-level', 'warn');
    my $dt = time() - $t0;
    my @cpu1 = (times())[2, 3];
    die "foxgov-ledgerd failed ($rc)\n" if $rc != 0;
    return ($n, $dt, ($cpu1[0] - $cpu0[0]) + ($cpu1[1] - $cpu0[1]));
}

my @rows;

# ------------------------------------------------------------ file backend
{
    my $n = fill('bench-file', $o{records}, 'file');
    my ($c, $dt, $cpu) = append_run("file:$dir/file", 'g-file', $n);
    my $lines = `wc -l < $dir/file/bench-file/ledger.jsonl` + 0;
    die "file ledger has $lines lines, not $n\n" if $lines != $n;
    push @rows, ['ledgerd append, file backend (fsync per batch)', $c, $dt,
                 $cpu, 50_000];
}

# ------------------------------------------------------ PostgreSQL backend
if ($o{pg} && FoxGov::Test::Postgres::available()) {
    my $pg = FoxGov::Test::Postgres->new;
    $pg->start;
    my $n = fill('bench-pg', $o{records}, 'pg');
    my ($c, $dt, $cpu) = append_run($pg->uri, 'g-pg', $n);
    my $rows = $pg->psql("SELECT count(*) FROM foxgov.ledger WHERE "
                         . "tenant_id = 'bench-pg'");
    $rows =~ s/\D//g;
    die "PostgreSQL ledger has $rows rows, not $n\n" if $rows != $n;
    push @rows, ['ledgerd append, PostgreSQL (commit per batch)', $c, $dt,
                 $cpu, 10_000];
    $pg->stop;
}

# ------------------------------------------------------------------ verify
{
    my $n = fill('bench-verify', $o{verify_records}, 'verify');
    append_run("file:$dir/verify", 'g-verify', $n);
    my $ledger = "$dir/verify/bench-verify/ledger.jsonl";
    my $t0 = time();
    my @cpu0 = (times())[2, 3];
    my $out = `$foxgov verify $ledger`;
    my $dt = time() - $t0;
    my @cpu1 = (times())[2, 3];
    die "foxgov verify failed: $out\n" if $? != 0 || $out !~ /verified/;
    push @rows, ['foxgov verify (every check)', $n, $dt,
                 ($cpu1[0] - $cpu0[0]) + ($cpu1[1] - $cpu0[1]), 100_000];
}

$redis->stop;

say sprintf('%-48s %10s %8s %8s %12s %10s  %s', 'what', 'records', 's',
            'cpu s', 'records/s', 'target/s', '');
for my $r (@rows) {
    my ($what, $n, $dt, $cpu, $target) = @$r;
    my $rate = $n / $dt;
    say sprintf('%-48s %10d %8.2f %8.2f %12.0f %10d  %s (%.2fx)', $what, $n,
                $dt, $cpu, $rate, $target,
                $rate >= $target ? 'PASS' : 'MISS', $rate / $target);
}
say sprintf('(%d cores; batch %d; Redis appendfsync always; verify target: '
            . '1,000,000 records in 10 s)', `nproc` + 0, $o{batch});
