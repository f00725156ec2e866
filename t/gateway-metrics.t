#!/usr/bin/perl

# foxgov_metrics: the Prometheus text of the gateway's counters, summed
# over its workers (two here): calls by kind and decision, evidence
# records sent/spooled/drained/failed, spool bytes, workers connected to
# Redis, the bundle's revision and age, token cache hits and misses; each
# counted exactly, and following Redis going away and coming back.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

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

my $redis = FoxGov::Test::Redis->new;
$redis->start;

my $g = FoxGov::Test::Gateway->new(workers => 2, revision => 'rev-"7"',
                                   config => <<'EOF');
        location = /metrics {
            foxgov_metrics;
        }
EOF
$g->with_redis($redis->addr, redis => 'connect_timeout=300ms timeout=1s');
$g->start;

# The metrics as { 'name{labels}' => value }; every line must be a
# comment or a sample.
sub metrics {
    my $r = $g->request(GET => '/metrics');
    is($r->{status}, 200, 'GET /metrics: 200') or return {};
    like($r->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4},
         'the Prometheus text format');
    my %m;
    my $bad = 0;
    for my $line (split /\n/, $r->{body}) {
        next if $line =~ /^# (HELP|TYPE) foxgov_\w+ /;
        if ($line =~ /^(foxgov_\w+(?:\{[^}]*\})?) (-?\d+)$/) {
            $m{$1} = $2;
        } else {
            $bad++;
            diag("not a sample: $line");
        }
    }
    is($bad, 0, 'every line is a comment or a sample');
    return \%m;
}

my $tok = $g->token;

sub model_call {
    my (%o) = @_;
    return $g->request(POST => '/v1/chat/completions', token => $tok,
        body => { model => $o{model} // 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'm' } ] });
}

my $m0 = metrics();
is($m0->{'foxgov_workers'}, 2, 'two workers');
my $deadline = time() + 5;
while (($m0->{'foxgov_redis_connected_workers'} // 0) < 2
       && time() < $deadline)
{
    sleep 0.1;
    $m0 = metrics();
}
is($m0->{'foxgov_redis_connected_workers'}, 2, 'both connected to Redis');
is($m0->{'foxgov_bundle_info{revision="rev-\"7\""}'}, 1,
   'the bundle revision, its label escaped');
ok(defined $m0->{'foxgov_bundle_age_seconds'}
   && $m0->{'foxgov_bundle_age_seconds'} >= 0
   && $m0->{'foxgov_bundle_age_seconds'} < 60, 'the bundle age');

my $allow = 'foxgov_calls_total{kind="model",decision="ALLOW"}';
my $deny = 'foxgov_calls_total{kind="model",decision="DENY"}';
my $sent = 'foxgov_evidence_records_total{result="sent"}';
my $spooled = 'foxgov_evidence_records_total{result="spooled"}';
my $drained = 'foxgov_evidence_records_total{result="drained"}';
my $hit = 'foxgov_token_cache_lookups_total{result="hit"}';
my $miss = 'foxgov_token_cache_lookups_total{result="miss"}';

my @ids;
for (1 .. 6) {
    my $r = model_call();
    push @ids, $r->{headers}{'foxgov-execution-id'} if $r->{status} == 200;
}
my $d = model_call(model => 'gpt-3.5-turbo');
is($d->{status}, 403, 'a call the policy denies');
$redis->wait_calls('acme', 5, @ids, $d->{headers}{'foxgov-execution-id'});

my $m1 = metrics();
is($m1->{$allow} - $m0->{$allow}, 6, 'six ALLOW model calls counted');
is($m1->{$deny} - $m0->{$deny}, 1, 'one DENY');
is($m1->{$sent} - $m0->{$sent}, 21, 'their 21 records sent to Redis');
is($m1->{$hit} + $m1->{$miss} - $m0->{$hit} - $m0->{$miss}, 7,
   'seven token lookups');
cmp_ok($m1->{$miss} - $m0->{$miss}, '<=', 2,
       'at most one miss per worker: the rest are hits');
is($m1->{'foxgov_spool_bytes'}, 0, 'nothing in the spools');

# Redis away: the records go to the spools, and the gauges say so
$redis->kill9;
my @down = map { model_call()->{headers}{'foxgov-execution-id'} } 1 .. 4;
# the last call record is written in the log phase, after its answer
$deadline = time() + 5;
my $m2 = metrics();
while ($m2->{$spooled} - $m1->{$spooled} < 12 && time() < $deadline) {
    sleep 0.1;
    $m2 = metrics();
}
is($m2->{$spooled} - $m1->{$spooled}, 12, 'twelve records spooled');
cmp_ok($m2->{'foxgov_spool_bytes'}, '>', 12 * 300,
       "the spools hold them ($m2->{foxgov_spool_bytes} bytes)");
cmp_ok($m2->{'foxgov_redis_connected_workers'}, '<', 2,
       'not every worker is connected');

$redis->start;
my ($by, $missing) = $redis->wait_calls('acme', 15, @down);
is($missing, 0, 'Redis back: the spooled records are there');
$deadline = time() + 10;
my $m3 = metrics();
while (($m3->{'foxgov_spool_bytes'} > 0
        || $m3->{$drained} - $m1->{$drained} < 12) && time() < $deadline)
{
    sleep 0.2;
    $m3 = metrics();
}
cmp_ok($m3->{$drained} - $m2->{$drained}, '>=', 12, 'drained, counted');
is($m3->{'foxgov_spool_bytes'}, 0, 'the spools are empty again');
is($m3->{'foxgov_evidence_records_total{result="failed"}'}, 0,
   'none lost');

is($g->stop, 0, 'nginx stops cleanly');
$redis->stop;
my ($ok, @bad) = $g->nginx->error_log_ok;
ok($ok, 'no alert') or diag(join "\n", @bad);

done_testing();
