#!/usr/bin/perl

# foxgov_redis ... cluster replicas=1 against a real Redis Cluster of 3
# masters with a replica each: a record counts as acknowledged only once
# a WAIT after it says a replica has it too, so a master SIGKILLed under
# traffic and replaced by its replica (a failover, no restart) loses no
# record: what the dead master had acknowledged is on its replica, what
# it had not is spooled, and drained to the new master once a replica
# confirms again (the old master, back as its replica).  With a master's
# replica down, that master's tenants' strict calls are answered 503 (no
# replica confirms) and the other masters' are forwarded.

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

local $SIG{ALRM} = sub { die "gateway-redis-cluster-failover.t: timed out\n" };
alarm 240;

my $cluster = FoxGov::Test::RedisCluster->new(masters => 3, replicas => 1,
                                              node_timeout => 1000);
$cluster->start;

my $g = FoxGov::Test::Gateway->new(workers => 2, config => <<'EOF');
        location /strict/ {
            rewrite ^/strict(/.*)$ $1 break;
            foxgov_evidence strict;
            foxgov_call model openai;
            foxgov_credential openai file=%%DIR%%/creds/openai_default;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
EOF
{
    my $d = $g->dir;
    $g->{opts}{config} =~ s/%%DIR%%/$d/g;
}
my @masters = map { $cluster->owner($_) } qw(a b c);    # any: seeds
my $spool = $g->with_redis(join(' ', $cluster->addrs, 'cluster replicas=1'),
                           redis => 'connect_timeout=300ms timeout=1s');
$g->start;

my %tok;
sub call {
    my ($tenant, $path) = @_;
    $tok{$tenant} //= $g->token(tenant => $tenant);
    return $g->request(POST => ($path // '') . '/v1/chat/completions',
        token => $tok{$tenant},
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'f' } ] });
}

my @tenants = map { "ft$_" } 1 .. 18;

# --------------------------------------------- acknowledged with WAIT

my %calls;
{
    my $r = call($tenants[0], '/strict');
    is($r->{status}, 200, 'strict with replicas=1: a replica confirms, 200');
    $calls{ $r->{headers}{'foxgov-execution-id'} } = $tenants[0];
    for my $t (@tenants) {
        $r = call($t);
        $calls{ $r->{headers}{'foxgov-execution-id'} } = $t
            if $r->{status} == 200;
    }
    my @m = $cluster->wait_recorded(\%calls, 15);
    is(scalar @m, 0, 'every record on its master');
}

# --------------------------------- a master killed: its replica takes over

{
    my $victim = $cluster->owner($tenants[1]);
    my ($replica) = $cluster->replicas_of($victim);
    ok($replica, 'the victim has a replica');
    my @down = grep { $cluster->owner($_)->port == $victim->port } @tenants;
    my @up = grep { $cluster->owner($_)->port != $victim->port } @tenants;

    my $out = $g->dir . '/failover.out';
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        open my $fh, '>', $out or POSIX::_exit(1);
        my $t0 = time();
        while (time() - $t0 < 7) {
            for my $t (@down[0 .. 1], $up[0]) {
                my $r = call($t);
                print $fh "$r->{status} "
                    . ($r->{headers}{'foxgov-execution-id'} // '-') . " $t\n";
            }
        }
        close $fh;
        POSIX::_exit(0);
    }

    sleep 1;
    $victim->kill9;
    waitpid $pid, 0;

    my %fc;
    open my $fh, '<', $out or die "$out: $!";
    my $n = 0;
    while (<$fh>) {
        my ($st, $x, $t) = split;
        $n++;
        $fc{$x} = $t if $st == 200;
    }
    cmp_ok($n, '>=', 9, "calls went on through the failover ($n)");
    is(scalar keys %fc, $n, 'all answered 200 (async)');

    my $deadline = time() + 20;
    while (time() < $deadline
           && $cluster->owner($down[0])->port != $replica->port) {
        sleep 0.2;
    }
    is($cluster->owner($down[0])->port, $replica->port,
       'the replica is the master of the victim\'s slots now');

    # the new master has no replica yet: replicas=1 cannot be confirmed
    # for its slots, so their records wait in the spool (strict: 503)
    my $r = call($down[0], '/strict');
    is($r->{status}, 503, 'strict, the new master without a replica: 503');
    $fc{ $r->{headers}{'foxgov-execution-id'} } = $down[0];
    my @m = $cluster->wait_recorded({ map { $_ => $fc{$_} }
                            grep { $fc{$_} eq $up[0] } keys %fc }, 20);
    is(scalar @m, 0, 'the other masters\' tenants are recorded meanwhile');

    # the old master comes back as the new one's replica
    $victim->start;
    ok($cluster->wait_ok(30), 'the old master is back, as a replica');
    is($cluster->owner($down[0])->port, $replica->port,
       'the promoted replica stays master');

    @m = $cluster->wait_recorded({ %calls, %fc }, 30);
    is(scalar @m, 0, 'no record lost across the failover (what the dead '
                     . 'master acknowledged was on its replica; the rest '
                     . 'was spooled)')
        or diag("missing: @m");
    %calls = (%calls, %fc);

    $deadline = time() + 15;
    my $st;
    while (time() < $deadline) {
        $st = call($down[0], '/strict')->{status};
        last if $st == 200;
        sleep 0.3;
    }
    is($st, 200, 'strict calls of its tenants go on on the new master');
}

# ------------------------------------ a replica down: no confirmation

{
    # a master whose replica is alive, then its replica killed
    my ($m) = grep { my @r = $cluster->replicas_of($_); @r && $r[0]{pid} }
              map { $cluster->owner($_) } @tenants;
    my ($rep) = $cluster->replicas_of($m);
    my ($t_m) = grep { $cluster->owner($_)->port == $m->port } @tenants;
    my ($t_o) = grep { my $o = $cluster->owner($_);
                       $o->port != $m->port
                       && grep { $_->{pid} } $cluster->replicas_of($o) }
                @tenants;
    $rep->kill9;
    sleep 0.5;
    my $r = call($t_m, '/strict');
    is($r->{status}, 503, 'strict, its master\'s replica down: 503');
    $calls{ $r->{headers}{'foxgov-execution-id'} } = $t_m;
    SKIP: {
        skip 'no master with a live replica left', 1 unless $t_o;
        $r = call($t_o, '/strict');
        is($r->{status}, 200, 'strict, another master with its replica: 200');
        $calls{ $r->{headers}{'foxgov-execution-id'} } = $t_o;
    }
    ok((grep { -s $_ > 8 } glob "$spool/spool-*.fgs"),
       'the unconfirmed records wait in the spool');

    $rep->start;
    my $deadline = time() + 20;
    while (time() < $deadline) {
        last if call($t_m, '/strict')->{status} == 200;
        sleep 0.3;
    }
    my @m = $cluster->wait_recorded(\%calls, 20);
    is(scalar @m, 0, 'once the replica is back, everything is recorded');
}

is($g->stop, 0, 'nginx stops cleanly');
{
    my ($ok, @bad) = $g->nginx->error_log_ok;
    ok($ok, 'no alert') or diag(join "\n", @bad);
}

$cluster->stop;
done_testing();
