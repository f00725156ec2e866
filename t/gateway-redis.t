#!/usr/bin/perl

# The evidence transport (ngx_http_foxgov_redis.c) against a real
# redis-server: every record of every call reaches foxgov:ev:{tenant} with
# the fields of DESIGN.md (t, h, r, o), h the sha256 of r, r the record's
# canonical bytes as the gateway built them; with Redis killed (SIGKILL)
# the gateway keeps serving, the records wait in the spool, and once Redis
# is back they arrive, every one of them; a worker killed while its spool
# holds records leaves them to the next worker, which sends them.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Gateway;
use FoxGov::Test::Redis;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no /proc (the workers are found there)' unless -d '/proc/self';

my $JSON = JSON::PP->new->utf8->canonical;

my $redis = FoxGov::Test::Redis->new;
$redis->start;

my $g = FoxGov::Test::Gateway->new;
my $spool = $g->with_redis($redis->addr,
    redis => 'connect_timeout=300ms timeout=1s', spool_args => 'max_size=16m');
$g->start;

my $tok = $g->token;

sub call {
    my ($n) = @_;
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => "call $n" } ] });
    return $r;
}

# The execution ids of n calls, each answered 200 (async: Redis or not).
sub calls {
    my ($n, $what) = @_;
    my @ids;
    for my $i (1 .. $n) {
        my $r = call($i);
        is($r->{status}, 200, "$what: call $i served");
        push @ids, $r->{headers}{'foxgov-execution-id'};
    }
    return @ids;
}

sub wait_all {
    my ($timeout, @ids) = @_;
    return $redis->wait_calls('acme', $timeout, @ids);
}

sub spool_bytes {
    my $n = 0;
    $n += -s $_ for glob "$spool/spool-*.fgs";
    return $n;
}


# ----------------------------------------------------- Redis is there

my @first = calls(5, 'redis up');
{
    my ($by, $missing) = wait_all(5, @first);
    is($missing, 0, 'every record of every call is in foxgov:ev:{acme}');

    my %logged = map { ("$_->{execution_id} $_->{type}" => $_) }
                 $g->records;
    my $ok = 1;
    for my $exec (@first) {
        for my $type (qw(AuthContext PolicyDecisionRecord ModelCallRecord)) {
            my @e = @{ $by->{$exec}{$type} // [] };
            my $e = $e[0] or do { $ok = 0; next };
            $ok &&= is(scalar @e, 1, "$type of $exec is there once");
            $ok &&= is($e->{h}, sha256_hex($e->{r}),
                       "$type: h is the sha256 of r");
            $ok &&= is($e->{rec}{record_type}, $type, "$type: t names it");
            my $l = $logged{"$exec $type"};
            $ok &&= is($e->{r}, $l && $l->{canonical},
                       "$type: r is the record the gateway built");
            my $o = eval { $JSON->decode($e->{o}) };
            $ok &&= ok($o && $o->{gateway_pid}, "$type: o is JSON");
            my ($rc, undef, $err) = run_foxgov({ stdin => $e->{r} },
                                               'validate', 'record', '-');
            $ok &&= is($rc, 0, "$type: r is schema-valid") or diag($err);
        }
        my %tids = map { $_->[0]{rec}{trace}{trace_id} => 1 }
                   values %{ $by->{$exec} };
        $ok &&= is(scalar keys %tids, 1,
                   "$exec: one trace_id in its three records");
        $ok &&= is($by->{$exec}{PolicyDecisionRecord}[0]{rec}
                   {auth_context_sha256},
                   $by->{$exec}{AuthContext}[0]{h},
                   "$exec: the decision links the AuthContext in Redis");
        $ok &&= is($by->{$exec}{ModelCallRecord}[0]{rec}
                   {policy_decision_sha256},
                   $by->{$exec}{PolicyDecisionRecord}[0]{h},
                   "$exec: the call record links the decision in Redis");
    }
    ok($ok, 'every entry has the fields of DESIGN.md');
    is(spool_bytes(), 8, 'nothing was spooled') or diag(spool_bytes());
}

# --------------------------------------- Redis killed, then back again

$redis->kill9;
my @during = calls(5, 'redis killed');
{
    my $deadline = time() + 5;
    sleep 0.1 while spool_bytes() <= 8 && time() < $deadline;
    cmp_ok(spool_bytes(), '>', 8, 'the records wait in the spool');
}

$redis->start;
{
    my ($by, $missing) = wait_all(15, @first, @during);
    is($missing, 0, 'with Redis back, every record of every call is there');
    note("calls with a record sent twice (harmless: the ledger dedupes): "
         . FoxGov::Test::Redis::twice($by, @first, @during));
    my $deadline = time() + 5;
    sleep 0.1 while spool_bytes() > 8 && time() < $deadline;
    is(spool_bytes(), 8, 'the spool is empty again');
}

# ------------- Redis up but refusing (an error reply, not a lost link)

{
    # OOM: every XADD is answered -OOM while the connection stays up
    my $r = $redis->client;
    $r->config_set('maxmemory', '1');
    $r->config_set('maxmemory-policy', 'noeviction');
    my @refused = calls(3, 'redis refusing');
    my $deadline = time() + 5;
    sleep 0.1 while spool_bytes() <= 8 && time() < $deadline;
    cmp_ok(spool_bytes(), '>', 8, 'the refused records wait in the spool');
    like($g->nginx->read_file('error.log'), qr/redis refused a \w+ record: OOM/,
         'the worker says Redis refused them, and why');

    # Redis takes records again, over the same connection: drained
    $r->config_set('maxmemory', '0');
    $r->quit;
    my ($by, $missing) = wait_all(15, @refused);
    is($missing, 0, 'once Redis takes records again, they are drained '
                    . 'without a reconnection');
    $deadline = time() + 5;
    sleep 0.1 while spool_bytes() > 8 && time() < $deadline;
    is(spool_bytes(), 8, 'and the spool is empty again');
}

# ---------------------- a worker killed with records in its spool

$redis->kill9;
my @orphan = calls(3, 'redis killed again');
{
    my $deadline = time() + 5;
    sleep 0.1 while spool_bytes() <= 8 && time() < $deadline;
    my @w = $g->workers;
    is(scalar @w, 1, 'one worker');
    kill 'KILL', $w[0];
    $deadline = time() + 10;
    sleep 0.1 while (grep { $_ == $w[0] } $g->workers or !$g->workers)
                    && time() < $deadline;
    my @now = $g->workers;
    ok(@now && $now[0] != $w[0], 'the master started another worker');
}

$redis->start;
{
    my ($by, $missing) = wait_all(15, @first, @during, @orphan);
    is($missing, 0, "the dead worker's records were sent by the next one");
    my $log = $g->nginx->read_file('error.log');
    like($log, qr/adopted \d+ records from spool/, 'and it says so');
}

is($g->stop, 0, 'nginx stops cleanly');
$redis->stop;

{
    # the one alert is the master's about the worker this test killed
    my (undef, @bad) = $g->nginx->error_log_ok;
    my @other = grep { !/worker process \d+ exited on signal 9/ } @bad;
    is(scalar @other, 0, 'no other alert, no sanitizer report')
        or diag(join "\n", @other);
}

done_testing();
