#!/usr/bin/perl

# foxgov-ledgerd --redis-cluster against a real 3-master Redis Cluster and
# a real PostgreSQL: two daemons in one consumer group share the streams
# of tenants spread over the masters and append every record exactly once
# (dense seq, verified by foxgov verify); bad entries are dead-lettered
# exactly once each, into foxgov:dlq:{<tenant>} on the node of the
# tenant's stream (XADD and XACK in one MULTI/EXEC), never into the
# single-instance foxgov:dlq; a slot migrated while the daemons run moves
# its stream, consumer group and pending entries with it, and what is fed
# after it is appended once too; a master killed and restarted under them
# is read again when it is back, the other masters' tenants going on
# meanwhile.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Postgres;
use FoxGov::Test::Redis;

plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no PostgreSQL' unless FoxGov::Test::Postgres::available();

local $SIG{ALRM} = sub { die "ledgerd-cluster.t: timed out\n" };
alarm 280;

my $pg = FoxGov::Test::Postgres->new;
$pg->start;
my $uri = $pg->uri;

my $dir = tempdir('foxgov-ledgerd-cluster-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});

my $cluster = FoxGov::Test::RedisCluster->new;
$cluster->start;

sub daemon {
    my ($name, @args) = @_;
    return FoxGov::Test::Ledgerd->new(redis => $cluster, ledger => $uri,
        log => "$dir/$name.log",
        args => [ '--consumer', $name, '--block', '200ms',
                  '--claim-idle', '2s', '--orphan-grace', '0ms', @args ]);
}

sub feed_tenant {
    my ($tenant, @recs) = @_;
    feed($cluster->owner($tenant), $tenant, @recs);
}

sub rows {
    my ($tenant) = @_;
    # 0 until a daemon has made the schema
    return (eval { $pg->psql("SELECT count(*) FROM foxgov.ledger "
                             . "WHERE tenant_id = '$tenant'") } // 0) + 0;
}

# rows, distinct seq, max seq, distinct hashes of a tenant's ledger
sub ledger_shape {
    my ($tenant) = @_;
    return $pg->psql("SELECT count(*) || ' ' || count(DISTINCT seq) || ' ' "
        . "|| coalesce(max(seq), 0) || ' ' || count(DISTINCT envelope_hash) "
        . "FROM foxgov.ledger WHERE tenant_id = '$tenant'");
}

sub wait_rows {
    my ($want, $timeout) = @_;        # { tenant => rows }
    my $deadline = time() + $timeout;
    while (1) {
        my @short = grep { rows($_) < $want->{$_} } keys %$want;
        return @short if !@short || time() >= $deadline;
        sleep 0.2;
    }
}

sub dlq_entries {
    my ($tenant) = @_;
    my $r = $cluster->owner($tenant)->client;
    my @out = map { { @{ $_->[1] } } }
              $r->xrange("foxgov:dlq:{$tenant}", '-', '+');
    $r->quit;
    return @out;
}

sub counts {
    my ($d) = @_;
    my @m = $d->log_text =~
        /stopping: (\d+) appended, (\d+) duplicates, (\d+) dead-lettered/g;
    return @m[-3 .. -1];
}

# ------------------------------- two daemons, tenants over 3 masters

my @tenants = map { "fleet$_" } 1 .. 12;
is(scalar keys %{ $cluster->spread(@tenants) }, 3,
   'the tenants\' streams are on all 3 masters');

my %want;
for my $t (@tenants) {
    feed_tenant($t, flows($t, 30, salt => 'one'));
    $want{$t} = 90;
}

my $a = daemon('a')->start;
my $b = daemon('b')->start;

my @short = wait_rows(\%want, 60);
is(scalar @short, 0, 'every record of every tenant appended')
    or diag("short: @short");

# ---------------------------------------------- dead letters, cluster

my ($ta, $tb) = do {
    my $sp = $cluster->spread(@tenants);
    my @ports = sort keys %$sp;
    ($sp->{ $ports[0] }[0], $sp->{ $ports[1] }[0]);
};
my %bad;
for my $t ($ta, $tb) {
    my @good = flows($t, 1, salt => 'dlq');
    my $ac = $good[0][2];
    (my $fresh = $ac) =~ s/"jti":"[^"]*"/"jti":"00000000-0000-4000-8000-000000000001"/;
    (my $extra = $ac) =~ s/\}\z/,"zzz":1}/;
    my @b = (['AuthContext', 'cd' x 32, $fresh],
             ['AuthContext', sha256_hex($extra), $extra]);
    $bad{$t} = { $b[0][1] => 'hash_mismatch', $b[1][1] => 'schema_violation' };
    feed_tenant($t, @good, @b);
    $want{$t} += 3;
}

@short = wait_rows(\%want, 30);
is(scalar @short, 0, 'the good records around the bad ones appended');

{
    my $deadline = time() + 20;
    while (time() < $deadline
           && (dlq_entries($ta) < 2 || dlq_entries($tb) < 2)) {
        sleep 0.2;
    }
    sleep 1;                            # a second copy would show by now
    for my $t ($ta, $tb) {
        my @dead = dlq_entries($t);
        is(scalar @dead, 2, "$t: each bad entry dead-lettered once, in "
                            . "foxgov:dlq:{$t}");
        is_deeply({ map { $_->{h} => $_->{reason} } @dead }, $bad{$t},
                  "$t: with their reasons");
        ok(!(grep { $_->{stream} ne "foxgov:ev:{$t}" || $_->{id} !~ /^\d+-\d+$/ }
             @dead), "$t: naming the stream and the entry");
        my $r = $cluster->owner($t)->client;
        my ($pending) = $r->xpending("foxgov:ev:{$t}", 'foxgov-ledger');
        is($pending, 0, "$t: nothing left pending (acknowledged with them)");
        $r->quit;
    }
    my $single = 0;
    for my $n ($cluster->nodes) {
        my $r = $n->client;
        my ($c, $keys) = $r->scan(0, 'MATCH', 'foxgov:dlq', 'COUNT', 100000);
        $single += @$keys;
        $r->quit;
    }
    is($single, 0, 'no foxgov:dlq in cluster mode (it would be CROSSSLOT)');
}

# ------------------------------------ a slot migrated under the daemons

{
    my $t = $tenants[2];
    my $from = $cluster->owner($t);
    my ($to) = grep { $_ != $from } $cluster->nodes;
    my $slot = FoxGov::Test::RedisCluster::slot_of($t);

    feed_tenant($t, flows($t, 20, salt => 'before-move'));
    $cluster->migrate_slot($slot, $from, $to);
    is($cluster->owner($t)->port, $to->port, "$t\'s slot moved");
    feed_tenant($t, flows($t, 20, salt => 'after-move'));
    $want{$t} += 120;

    @short = wait_rows({ $t => $want{$t} }, 40);
    is(scalar @short, 0, "$t: what was fed before and after the move is "
                         . 'appended');
}

# ------------------------------------ a master killed and restarted

{
    my $victim = $cluster->owner($tenants[3]);
    my @down = grep { $cluster->owner($_) == $victim } @tenants;
    my @up = grep { $cluster->owner($_) != $victim } @tenants;

    # fed to the victim, then it dies before the daemons read all of it
    feed_tenant($_, flows($_, 10, salt => 'kill')) for @down;
    $want{$_} += 30 for @down;
    $victim->kill9;

    feed_tenant($_, flows($_, 10, salt => 'meanwhile')) for @up[0 .. 1];
    $want{$_} += 30 for @up[0 .. 1];
    @short = wait_rows({ map { $_ => $want{$_} } @up[0 .. 1] }, 30);
    is(scalar @short, 0, 'the other masters\' tenants go on while one is '
                         . 'down');

    $victim->start;
    ok($cluster->wait_ok(30), 'the master is back');
    @short = wait_rows(\%want, 60);
    is(scalar @short, 0, 'every record appended once it is back')
        or diag("short: @short");
}

is($a->stop, 0, 'daemon a stops');
is($b->stop, 0, 'daemon b stops');

my ($a_app) = counts($a);
my ($b_app) = counts($b);
cmp_ok($a_app, '>', 0, "daemon a appended ($a_app)");
cmp_ok($b_app, '>', 0, "daemon b appended ($b_app)");
my $total = 0;
$total += $want{$_} for @tenants;
is($a_app + $b_app, $total, "together exactly every record ($total)");

for my $t (@tenants) {
    my $n = $want{$t};
    is(ledger_shape($t), "$n $n $n $n", "$t: $n rows, dense seq, no twice");
}
$pg->verify_ok($_, $want{$_}, 'cluster') for @tenants[0 .. 3], $ta, $tb;

unlike($a->log_text . $b->log_text, qr/\[(alert|crit)\]/i, 'no alert');

# ------------------------------------------------ --once over the masters

{
    my @once = map { "once$_" } 1 .. 6;
    feed_tenant($_, flows($_, 5, salt => 'once')) for @once;
    my $o = FoxGov::Test::Ledgerd->new(redis => $cluster,
        ledger => "file:$dir/once", log => "$dir/once.log",
        args => [ '--group', 'once-group', '--consumer', 'once' ]);
    is($o->run_once, 0, '--once over the 3 masters exits 0');
    for my $t (@once) {
        my ($rc, $out, $err) = run_foxgov('verify',
                                          "$dir/once/$t/ledger.jsonl");
        like($out, qr/15 records/, "--once: $t drained (15 records)")
            or diag($err);
    }
}

# ------------------------------------- a hostile seed: bad CLUSTER SLOTS

# A fake node answering CLUSTER SLOTS with malformed maps: the daemon
# logs it, uses none of it, keeps trying (no crash), and stops on SIGTERM.
{
    my @maps = (
        "*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n\$9\r\n127.0.0.1\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:16383\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$9\r\nlocalhost\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$3\r\n1;2\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$9\r\n127.0.0.1\r\n:0\r\n",
        "*2\r\n:1\r\n\$-1\r\n",
        "+OK\r\n",
        "-ERR no\r\n",
        "*0\r\n",
    );
    my $n = 0;
    my ($fake, $fport) = FoxGov::Test::Redis::fake_node(sub {
        my $cmd = uc($_[0] // '') . ' ' . uc($_[1] // '');
        return $cmd =~ /^CLUSTER SLOTS/ ? $maps[ $n++ % @maps ] : "+OK\r\n";
    });
    my $h = FoxGov::Test::Ledgerd->new(redis => $cluster,
        ledger => "file:$dir/hostile", log => "$dir/hostile.log",
        args => [ '--redis-cluster', "127.0.0.1:$fport" ]);
    $h->start;
    sleep 3;
    ok($h->running, 'a daemon given malformed maps keeps running');
    like($h->log_text, qr/CLUSTER SLOTS: an unexpected/,
         'and says what it got');
    unlike($h->log_text, qr/cluster master 127\.0\.0\.1:1\b/,
           'using none of it');
    is($h->stop, 0, 'it stops on SIGTERM');
    kill 'KILL', $fake;
    waitpid $fake, 0;
}

$cluster->stop;
$pg->stop;
done_testing();
