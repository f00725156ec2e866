#!/usr/bin/perl

# foxgov_redis ... cluster: a spool file left by a worker that exits while
# the workers of another nginx sharing the spool directory already run (a
# reload or a binary upgrade leaves such files) is adopted by a running
# worker within seconds, without a restart, and drained: every record in
# Redis once.  While its worker lives, the file is not taken.  (The single
# form: t/gateway-redis-spool.t, t/faults/nginx-upgrade.t.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp ();
use Test::More;
use Time::HiRes qw(time sleep);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway;
use FoxGov::Test::Redis;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

local $SIG{ALRM} = sub { die "gateway-redis-cluster-adopt.t: timed out\n" };
alarm 120;

my $cluster = FoxGov::Test::RedisCluster->new(node_timeout => 2000);
$cluster->start;

my $shared = File::Temp::tempdir('foxgov-spool-XXXXXXXX', TMPDIR => 1,
                                 CLEANUP => 1);
chmod 0755, $shared;
my $spool = "$shared/spool";

sub call {
    my ($g, $tenant) = @_;
    my $r = $g->request(POST => '/v1/chat/completions',
        token => $g->token(tenant => $tenant),
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'left' } ] });
    return $r->{status} == 200 ? $r->{headers}{'foxgov-execution-id'} : undef;
}

sub metric {
    my ($g, $name) = @_;
    my $r = $g->request(GET => '/metrics');
    return $r->{body} =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}

sub wait_log {
    my ($g, $re, $timeout) = @_;
    my $deadline = time() + $timeout;
    while (time() < $deadline) {
        my $log = $g->nginx->read_file('error.log');
        return $log if $log =~ $re;
        sleep 0.1;
    }
    return $g->nginx->read_file('error.log');
}

# Each record of $calls ({exec => tenant}) in Redis: { "exec type" => n }.
sub counts {
    my ($calls) = @_;
    my %count;
    for my $t (keys %{ { map { $_ => 1 } values %$calls } }) {
        for my $e ($cluster->entries($t)) {
            my ($x) = $e->{r} =~ /"execution_id":"([^"]+)"/;
            $count{"$x $e->{t}"}++ if $x && exists $calls->{$x};
        }
    }
    return \%count;
}

my @types = qw(AuthContext PolicyDecisionRecord ModelCallRecord);
my @tenants = map { sprintf 'tenant%02d', $_ } 1 .. 6;

# ------------------------- the gateway that runs on, on the cluster

my $g = FoxGov::Test::Gateway->new(workers => 2, config => <<'EOF');
        location = /metrics {
            foxgov_metrics;
        }
EOF
$g->with_redis(join(' ', $cluster->addrs, 'cluster'), spool => $spool,
               redis => 'connect_timeout=300ms timeout=1s');
$g->start;

my @gw;
{
    my $deadline = time() + 10;
    sleep 0.1 while (@gw = $g->workers) < 2 && time() < $deadline;
    is(scalar @gw, 2, 'two workers run');
    my %c = map { (call($g, $_) // '') => $_ } @tenants;
    delete $c{''};
    is(scalar keys %c, 6, 'they serve');
    $deadline = time() + 10;
    sleep 0.2 while time() < $deadline
        && grep { !$_ } @{ counts(\%c) }{ map { my $x = $_;
                                               map { "$x $_" } @types }
                                          keys %c };
    is(metric($g, 'foxgov_evidence_records_total{result="spooled"}'), 0,
       'nothing spooled');
}

# --------------- a worker of another nginx, on the same spool dir, that
# --------------- reaches no node: its records are spooled

my $dead = FoxGov::Test::Fixtures::free_port();
my $o = FoxGov::Test::Gateway->new(workers => 1);
$o->with_redis("127.0.0.1:$dead cluster", spool => $spool,
               redis => 'connect_timeout=300ms timeout=1s');
$o->start;

my ($ow, %left);
{
    my $deadline = time() + 10;
    sleep 0.1 while !(($ow) = $o->workers) && time() < $deadline;
    ok($ow, 'its worker runs');
    for my $round (1 .. 2) {
        for my $t (@tenants) {
            my $x = call($o, $t);
            $left{$x} = $t if defined $x;
        }
    }
    is(scalar keys %left, 12, '12 calls served with no node reachable');
    $deadline = time() + 5;
    sleep 0.1 while time() < $deadline
        && !(-s "$spool/spool-$ow.fgs" && -s _ > 8);
    ok(-s "$spool/spool-$ow.fgs" > 8, 'their records are in its spool');

    # while its worker holds it, the running workers leave it alone
    sleep 2.5;
    unlike($g->nginx->read_file('error.log'), qr/adopted \d+ records/,
           'a live worker\'s spool is not adopted');
    my $c = counts(\%left);
    is(scalar keys %$c, 0, 'none of its records is in Redis');
}

# its worker exits (as in a reload): the file stays, no one holds it (a
# running worker may adopt it before stop() returns: not checked here)

is($o->stop, 0, 'the other nginx stops');

# ------------- a running worker adopts it, with no restart, and drains it

{
    my $log = wait_log($g, qr/adopted \d+ records from spool/, 10);
    like($log, qr/adopted 36 records from spool \S+\/spool-$ow\.fgs/,
         'a running worker adopts its 36 records');
    my $deadline = time() + 5;
    sleep 0.1 while -e "$spool/spool-$ow.fgs" && time() < $deadline;
    ok(!-e "$spool/spool-$ow.fgs", 'and removes the file');
    is_deeply([ $g->workers ], \@gw, 'no worker was restarted');

    my $c;
    $deadline = time() + 15;
    while (1) {
        $c = counts(\%left);
        last if keys %$c == 3 * keys %left || time() >= $deadline;
        sleep 0.2;
    }
    my $missing = grep { my $x = $_; grep { !$c->{"$x $_"} } @types }
                  keys %left;
    is($missing, 0, 'each of its calls has its three records in Redis');
    is(scalar(grep { $_ > 1 } values %$c), 0, 'each once');
    is(metric($g, 'foxgov_evidence_records_total{result="drained"}'), 36,
       'counted as drained');

    $deadline = time() + 10;
    sleep 0.2 while time() < $deadline
        && grep { -s $_ > 8 } glob "$spool/spool-*.fgs";
    ok(!(grep { -s $_ > 8 } glob "$spool/spool-*.fgs"),
       'the spool is emptied');

    my %more = map { (call($g, $_) // '') => $_ } @tenants[0 .. 2];
    delete $more{''};
    is(scalar keys %more, 3, 'calls go on');
}

is($g->stop, 0, 'nginx stops cleanly');
for my $n ($g, $o) {
    my ($ok, @bad) = $n->nginx->error_log_ok;
    ok($ok, 'no alert') or diag(join "\n", @bad);
}

$cluster->stop;
done_testing();
