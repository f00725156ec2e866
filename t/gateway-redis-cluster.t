#!/usr/bin/perl

# foxgov_redis ... cluster against a real 3-master Redis Cluster: records
# of many tenants land in the streams of the node owning each tenant's
# hash slot, a call's records in order; a slot migrated (IMPORTING,
# MIGRATING, MIGRATE, SETSLOT NODE) while calls of its tenant go on loses
# nothing (MOVED and ASK followed, or the spool); a master SIGKILLed: its
# tenants' records are spooled while the others' go on, strict calls of
# its tenants are answered 503 and those of the other masters' tenants
# 200; a worker holding spooled records SIGKILLed: its replacement adopts
# them; once the master is restarted the spool is drained: every call's
# records there, counted exactly.  A hostile node (malformed CLUSTER
# SLOTS, garbage redirections) crashes nothing and loses nothing.  (nginx -t and the cluster form:
# t/gateway-config.t.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX qw(WNOHANG);
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

local $SIG{ALRM} = sub { die "gateway-redis-cluster.t: timed out\n" };
alarm 240;

my $cluster = FoxGov::Test::RedisCluster->new(node_timeout => 2000);
$cluster->start;
my @nodes = $cluster->nodes;

my $g = FoxGov::Test::Gateway->new(workers => 2, config => <<'EOF');
        location /strict/ {
            rewrite ^/strict(/.*)$ $1 break;
            foxgov_evidence strict;
            foxgov_call model openai;
            foxgov_credential openai file=%%DIR%%/creds/openai_default;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
        location = /metrics {
            foxgov_metrics;
        }
EOF
{
    my $d = $g->dir;
    $g->{opts}{config} =~ s/%%DIR%%/$d/g;
}
my $spool = $g->with_redis(join(' ', $cluster->addrs, 'cluster'),
                           redis => 'connect_timeout=300ms timeout=1s');
$g->start;

my %tok;
sub call {
    my ($tenant, $path) = @_;
    $tok{$tenant} //= $g->token(tenant => $tenant);
    my $r = $g->request(POST => ($path // '') . '/v1/chat/completions',
        token => $tok{$tenant},
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'c' } ] });
    return $r;
}

sub metric {
    my ($name) = @_;
    my $r = $g->request(GET => '/metrics');
    return $r->{body} =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}

# Per tenant: no call record before its decision, no decision before its
# AuthContext (stream order), and no record of another tenant.
sub order_ok {
    my (@tenants) = @_;
    my $bad = 0;
    for my $t (@tenants) {
        my %seen;
        for my $e ($cluster->entries($t)) {
            my ($x) = $e->{r} =~ /"execution_id":"([^"]+)"/;
            my ($tt) = $e->{r} =~ /"tenant_id":"([^"]+)"/;
            $bad++, diag("$t: a record of $tt") if $tt ne $t;
            if ($e->{t} eq 'PolicyDecisionRecord' && !$seen{$x}{AuthContext}
                || $e->{t} eq 'ModelCallRecord'
                   && !$seen{$x}{PolicyDecisionRecord})
            {
                $bad++;
                diag("$t: $e->{t} of $x before what it links to");
            }
            $seen{$x}{ $e->{t} } = 1;
        }
    }
    return $bad;
}

# ----------------------------------------------- many tenants, 3 nodes

my @tenants = map { sprintf 'tenant%02d', $_ } 1 .. 24;
my $spread = $cluster->spread(@tenants);
is(scalar keys %$spread, 3, 'the tenants are spread over the 3 masters');

my %calls;
for my $round (1 .. 2) {
    for my $t (@tenants) {
        my $r = call($t);
        is($r->{status}, 200, "$t call $round: 200") if $round == 1
                                                     && $t eq $tenants[0];
        $calls{ $r->{headers}{'foxgov-execution-id'} } = $t
            if $r->{status} == 200;
    }
}
is(scalar keys %calls, 48, '48 calls answered');
my @missing = $cluster->wait_recorded(\%calls, 20);
is(scalar @missing, 0, 'every call\'s three records are in Redis');

{
    # each stream on its owner only, and each node holds only its own
    my $wrong = 0;
    for my $n (@nodes) {
        my $r = $n->client;
        my ($cursor, @keys) = (0);
        do {
            my ($c, $k) = $r->scan($cursor, 'MATCH', 'foxgov:ev:*',
                                   'COUNT', 1000);
            ($cursor, @keys) = ($c, @keys, @$k);
        } while ($cursor);
        $r->quit;
        for my $k (@keys) {
            my ($t) = $k =~ /\{(.*)\}/;
            $wrong++ unless grep { $_ eq $t } @{ $spread->{ $n->port } };
        }
        is(scalar @keys, scalar @{ $spread->{ $n->port } },
           'node ' . $n->port . ' holds the streams of its tenants');
    }
    is($wrong, 0, 'no stream on a node that does not own its slot');
}
is(order_ok(@tenants), 0, 'per tenant, every record after what it links to');
is(metric('foxgov_redis_connected_workers'), 2,
   'both workers connected to every master');
is(metric('foxgov_evidence_records_total{result="spooled"}'), 0,
   'nothing spooled');

# ------------------------------------------------- nginx -s reload

{
    my @old = $g->workers;
    $g->nginx->reload;
    my $deadline = time() + 15;
    my @new;
    while (time() < $deadline) {
        @new = $g->workers;
        last if @new == 2 && !grep { my $o = $_; grep { $_ == $o } @new }
                                   @old;
        sleep 0.1;
    }
    is(scalar(grep { my $o = $_; grep { $_ == $o } @new } @old), 0,
       'reloaded: new workers');
    my %rc;
    for my $t (@tenants[0 .. 7]) {
        my $r = call($t);
        $rc{ $r->{headers}{'foxgov-execution-id'} } = $t
            if $r->{status} == 200;
    }
    is(scalar keys %rc, 8, 'served after the reload');
    my @m = $cluster->wait_recorded(\%rc, 15);
    is(scalar @m, 0, 'and recorded by the new workers\' map');
    %calls = (%calls, %rc);
}

# ------------------------------------------- a slot migrated under load

{
    my $t = $tenants[0];
    my $from = $cluster->owner($t);
    my ($to) = grep { $_ != $from } @nodes;
    my $slot = FoxGov::Test::RedisCluster::slot_of($t);
    my $other = (grep { $cluster->owner($_) != $from } @tenants)[0];

    # calls of $t (and of a tenant elsewhere) from a child, all along
    my $out = $g->dir . '/migrate.out';
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        my $t0 = time();
        while (time() - $t0 < 4) {
            for my $tt ($t, $other) {
                my $r = call($tt);
                print $fh "$r->{status} "
                    . ($r->{headers}{'foxgov-execution-id'} // '-')
                    . " $tt\n";
            }
        }
        close $fh;
        POSIX::_exit(0);
    }

    sleep 0.5;
    $cluster->migrate_slot($slot, $from, $to, sub { sleep 0.5 });
    waitpid $pid, 0;

    my %mc;
    open my $fh, '<', $out or die "$out: $!";
    my $n = 0;
    while (<$fh>) {
        my ($status, $x, $tt) = split;
        $n++;
        $mc{$x} = $tt if $status == 200;
    }
    cmp_ok($n, '>=', 10, "calls went on during the migration ($n)");
    is(scalar keys %mc, $n, 'every one of them answered 200');
    is($cluster->owner($t)->port, $to->port, "$t\'s slot is on the new node");

    @missing = $cluster->wait_recorded(\%mc, 20);
    is(scalar @missing, 0,
       'no record lost across the migration (MOVED, ASK, spool)');
    is(order_ok($t, $other), 0, 'and in order per tenant');
    my $r = $from->client;
    is($r->cluster('countkeysinslot', $slot), 0,
       'nothing left on the old owner');
    $r->quit;
    %calls = (%calls, %mc);
}

# ---------------------------- a strict call while its slot is migrating

# The key moved, the slot not handed over yet: the old owner answers ASK,
# the gateway sends ASKING and the XADD to the new one (which would
# answer MOVED back without ASKING), so the strict call is acknowledged.
{
    my $t = $tenants[4];
    my $from = $cluster->owner($t);
    my ($to) = grep { $_ != $from } @nodes;
    my $slot = FoxGov::Test::RedisCluster::slot_of($t);
    my $before = () = $cluster->entries($t);
    my ($st, $x);
    $cluster->migrate_slot($slot, $from, $to, sub {
        my $r = call($t, '/strict');
        ($st, $x) = ($r->{status}, $r->{headers}{'foxgov-execution-id'});
        $calls{$x} = $t if $x;
    });
    is($st, 200, 'strict, its key migrated but not its slot (ASK): 200');
    my $r = $to->client;
    my @e = $r->xrange("foxgov:ev:{$t}", '-', '+');
    $r->quit;
    my %types = map { my %f = @{ $_->[1] }; $f{r} =~ /\Q$x\E/
                                            ? ($f{t} => 1) : () } @e;
    ok($types{AuthContext} && $types{PolicyDecisionRecord},
       'its AuthContext and decision are on the new owner');
    @missing = $cluster->wait_recorded({ $x => $t }, 10);
    is(scalar @missing, 0, 'and its call record');
}

# ------------------------------------------- a master killed, restarted

{
    my $victim = $cluster->owner($tenants[1]);
    my @down = grep { $cluster->owner($_) == $victim } @tenants;
    my @up = grep { $cluster->owner($_) != $victim } @tenants;
    ok(@down && @up, 'tenants on the victim and on the others');

    $victim->kill9;

    my %kc;
    my $t0 = time();
    for my $round (1 .. 3) {
        for my $t (@down[0 .. ($#down < 3 ? $#down : 3)], @up[0 .. 3]) {
            my $r = call($t);
            $kc{ $r->{headers}{'foxgov-execution-id'} } = $t
                if $r->{status} == 200;
        }
    }
    is(scalar keys %kc, 3 * (($#down < 3 ? @down : 4) + 4),
       'async calls of every tenant are served with a master down');
    cmp_ok(time() - $t0, '<', 10, 'without waiting for the dead master');

    # the others' tenants land at once; the victim's are spooled
    my %upc = map { $_ => $kc{$_} } grep { my $x = $_;
                                           !grep { $_ eq $kc{$x} } @down }
              keys %kc;
    @missing = $cluster->wait_recorded(\%upc, 10);
    is(scalar @missing, 0, 'the other masters\' tenants are recorded');
    ok((grep { -s $_ > 8 } glob "$spool/spool-*.fgs"),
       'the dead master\'s records are in the spool');
    cmp_ok(metric('foxgov_evidence_records_total{result="spooled"}'), '>', 0,
           'counted as spooled');
    is(metric('foxgov_redis_connected_workers'), 0,
       'no worker reaches every master');

    # a worker holding spooled records dies: the one nginx starts in its
    # place adopts its spool (counted per slot) and drains it later
    my @w = $g->workers;
    kill 'KILL', $w[0];
    my $wdl = time() + 10;
    my @now;
    sleep 0.1 while time() < $wdl
        && ((@now = grep { $_ != $w[0] } $g->workers) < 2);
    is(scalar @now, 2, 'a worker SIGKILLed is replaced');
    $wdl = time() + 5;
    sleep 0.1 while time() < $wdl
        && $g->nginx->read_file('error.log') !~ /adopted \d+ records/;
    like($g->nginx->read_file('error.log'),
         qr/adopted [1-9]\d* records from spool \S+spool-$w[0]\.fgs/,
         'its replacement adopts its spooled records');
    sleep 0.3;
    for my $t (@down[0 .. 1], @up[0 .. 1]) {
        my $r = call($t);
        $kc{ $r->{headers}{'foxgov-execution-id'} } = $t
            if $r->{status} == 200;
    }

    my $s = call($down[0], '/strict');
    is($s->{status}, 503, 'strict, its master down: 503');
    is($s->{json}{error}{code}, 'evidence_unavailable',
       'evidence_unavailable');
    $kc{ $s->{headers}{'foxgov-execution-id'} } = $down[0];
    my $ok = call($up[0], '/strict');
    is($ok->{status}, 200, 'strict, a tenant of another master: 200');
    $kc{ $ok->{headers}{'foxgov-execution-id'} } = $up[0];

    $victim->start;
    ok($cluster->wait_ok(30), 'the master is back, the cluster ok');

    @missing = $cluster->wait_recorded(\%kc, 30);
    is(scalar @missing, 0, 'once it is back every call is recorded');

    # exact: each call's three records, once each (the spool was drained
    # once: nothing sent twice here, though twice would be allowed)
    my %count;
    my $total = 0;
    for my $t (keys %{ { map { $_ => 1 } values %calls, values %kc } }) {
        for my $e ($cluster->entries($t)) {
            my ($x) = $e->{r} =~ /"execution_id":"([^"]+)"/;
            $count{ "$x $e->{t}" }++;
        }
    }
    my %all = (%calls, %kc);
    my $lost = grep { my $x = $_; grep { !$count{"$x $_"} }
                      qw(AuthContext PolicyDecisionRecord ModelCallRecord) }
               keys %all;
    is($lost, 0, 'no record lost (' . (3 * keys %all) . ' records)');
    is(order_ok(@tenants), 0, 'per tenant, in order after the drain');

    my $deadline = time() + 15;
    my $st;
    while (time() < $deadline) {
        $st = call($down[0], '/strict')->{status};
        last if $st == 200;
        sleep 0.3;
    }
    is($st, 200, 'strict calls of its tenants are forwarded again');

    $deadline = time() + 10;
    while (time() < $deadline
           && grep { -s $_ > 8 } glob "$spool/spool-*.fgs") {
        sleep 0.2;
    }
    ok(!(grep { -s $_ > 8 } glob "$spool/spool-*.fgs"),
       'the spool is emptied');
    is(metric('foxgov_redis_connected_workers'), 2,
       'both workers reach every master again');
}

is($g->stop, 0, 'nginx stops cleanly');
{
    my (undef, @bad) = $g->nginx->error_log_ok;
    my @other = grep { !/worker process \d+ exited on signal 9/ } @bad;
    ok(!@other, 'no alert but the worker killed') or diag(join "\n", @other);
}

# ------------------------------------- a hostile "cluster": bad replies

# A fake node: CLUSTER SLOTS answered with malformed maps (out of range,
# reversed, not a string, too short, a host name, not an array, an
# error), then a map giving it every slot, after which each XADD is
# answered with a redirection that is garbage or leads nowhere.  The
# worker must not crash, must keep serving, and must keep every record
# (in the spool: this node acknowledges none).
{
    my $fport = FoxGov::Test::Fixtures::free_port();
    my @maps = (
        "*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n\$9\r\n127.0.0.1\r\n:$fport\r\n",
        "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n\$9\r\n127.0.0.1\r\n:$fport\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*2\r\n:0\r\n:16383\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$9\r\nlocalhost\r\n:$fport\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$9\r\n127.0.0.1\r\n:70000\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n\$9\r\n127.0.0.1\r\n",
        "*2\r\n:1\r\n\$-1\r\n",
        "+OK\r\n",
        "-ERR no\r\n",
        "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n\$0\r\n\r\n:$fport\r\n",
    );
    my @redirects = (
        '-MOVED 99999 127.0.0.1:1', '-MOVED abc', '-ASK 5 :0',
        '-MOVED %s 127.0.0.1:' . $fport, '-ASK %s 999.1.1.1:80',
        '-MOVED %s 127.0.0.1:', '-ASK %s', '-TRYAGAIN', ':12',
        '-CLUSTERDOWN The cluster is down', '-MOVED %s ' . ('9' x 200),
    );
    my ($nmap, $nx) = (0, 0);
    my $fake;
    ($fake, $fport) = FoxGov::Test::Redis::fake_node(sub {
        my (@a) = @_;
        my $cmd = uc($a[0] // '') . ' ' . uc($a[1] // '');
        if ($cmd =~ /^CLUSTER SLOTS/) {
            my $out = $maps[ $nmap++ % @maps ];
            return $nmap > 3 * @maps ? $maps[-1] : $out;
        }
        if ($cmd =~ /^XADD/) {
            my $slot = FoxGov::Test::RedisCluster::slot_of(
                $a[1] =~ /\{(.*)\}/ ? $1 : '');
            no warnings 'redundant';    # not every reply names the slot
            return sprintf($redirects[ $nx++ % @redirects ], $slot) . "\r\n";
        }
        return "+OK\r\n";
    }, port => $fport);

    my $h = FoxGov::Test::Gateway->new(workers => 2);
    my $hspool = $h->with_redis("127.0.0.1:$fport cluster",
                                redis => 'connect_timeout=300ms timeout=1s');
    $h->start;
    my @before;
    my $wdl = time() + 10;
    sleep 0.1 while (@before = $h->workers) < 2 && time() < $wdl;

    my ($ok, $n) = (0, 0);
    my $t0 = time();
    while (time() - $t0 < 6) {
        for my $tn (@tenants[0 .. 5]) {
            my $r = $h->request(POST => '/v1/chat/completions',
                token => $h->token(tenant => $tn),
                body => { model => 'gpt-4o-2024-08-06',
                          messages => [ { role => 'user',
                                          content => 'x' } ] });
            $n++;
            $ok++ if $r->{status} == 200;
        }
    }
    is($ok, $n, "served all along ($n calls) by a node answering garbage");
    is_deeply([ $h->workers ], \@before, 'no worker crashed');
    my $log = $h->nginx->read_file('error.log');
    like($log, qr/CLUSTER SLOTS answered something unexpected/,
         'malformed maps are logged and ignored');
    unlike($log, qr/exited on signal|neither in redis nor in the spool/,
           'no crash, no record lost');
    ok((grep { -s $_ > 8 } glob "$hspool/spool-*.fgs"),
       'the records are kept in the spool');
    is($h->stop, 0, 'nginx stops cleanly');
    my ($lok, @bad) = $h->nginx->error_log_ok;
    ok($lok, 'no alert') or diag(join "\n", @bad);
    kill 'KILL', $fake;
    waitpid $fake, 0;
}

$cluster->stop;
done_testing();
