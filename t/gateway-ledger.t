#!/usr/bin/perl

# The whole evidence path: calls through the real gateway (ALLOW of a
# model call, a chat body with escapes, a DENY, a 428 held write, its
# approved retry, a 400 schema refusal) write their records to Redis;
# foxgov-ledgerd appends them; foxgov verify accepts the ledger; every
# call's records are in it exactly once, under its trace; nothing is
# dead-lettered.  What the gateway writes is what the ledger takes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Gateway;
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $JSON = JSON::PP->new->utf8->canonical;
my $dir = tempdir('foxgov-gwledger-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});

my $redis = FoxGov::Test::Redis->new;
$redis->start;

my $g = FoxGov::Test::Gateway->new;
$g->with_redis($redis->addr, redis => 'connect_timeout=300ms timeout=1s');
$g->start;
my $tok = $g->token;

my (%want, @ids);           # execution id -> the record types it must have

sub expect {
    my ($r, $what, $status, @types) = @_;
    is($r->{status}, $status, "$what: $status") or diag($r->{raw});
    my $x = $r->{headers}{'foxgov-execution-id'};
    ok($x, "$what: an execution id") or return;
    $want{$x} = [ sort @types ];
    push @ids, $x;
    return $r;
}

my @call = qw(AuthContext ModelCallRecord PolicyDecisionRecord);
my @tool = qw(AuthContext PolicyDecisionRecord ToolCallRecord);

expect($g->request(POST => '/v1/chat/completions', token => $tok,
    body => { model => 'gpt-4o-2024-08-06', messages => [
        { role => 'user', content => "line one\nline \"two\"\t\x{e9}\\" } ] }),
    'ALLOW, a body with escapes', 200, @call);

expect($g->request(POST => '/v1/chat/completions', token => $tok,
    body => { model => 'gpt-4o-2024-08-06', max_tokens => 9000,
              messages => [ { role => 'user', content => 'big' } ] }),
    'DENY', 403, @call);

my $path = '/api/now/table/incident/9d385017c611228701d22104cc95c371';
my $body = { category => 'network', priority => '2',
             work_notes => "triaged\nby the agent" };
my $held = expect($g->request(PATCH => $path, token => $tok, body => $body),
                  'REQUIRE_HITL', 428, @tool);
expect($g->request(PATCH => $path, token => $tok, body => $body,
    headers => [ 'FoxGov-Approval' =>
                 $g->approval($held->{json}{error}{approval}) ]),
    'approved retry', 200, @tool);

expect($g->request(PATCH => $path, token => $tok,
    body => { category => 'network', unknown_field => 1 }),
    'schema refusal', 400, @tool);

# every record in the stream (call records are written after the response)
my $total = 0;
$total += @{ $want{$_} } for @ids;
my $deadline = time() + 20;
sleep 1 while $redis->client->xlen('foxgov:ev:{acme}') < $total
              && time() < $deadline;
is($redis->client->xlen('foxgov:ev:{acme}'), $total,
   "all $total records reached Redis");

my $d = FoxGov::Test::Ledgerd->new(redis => $redis,
    ledger => "file:$dir/ledger", log => "$dir/ledgerd.log",
    args => [ '--orphan-grace', '0ms' ]);
is($d->run_once, 0, 'foxgov-ledgerd drains the stream');

my $ledger = "$dir/ledger/acme/ledger.jsonl";
my ($rc, $out, $err) = run_foxgov('verify', $ledger);
is($rc, 0, 'foxgov verify accepts the ledger') or diag($err);

my (%got, %trace);
open my $fh, '<', $ledger or die "$ledger: $!";
while (my $l = <$fh>) {
    my $e = $JSON->decode($l);
    my $r = $e->{record};
    push @{ $got{ $r->{execution_id} } }, $r->{record_type};
    $trace{ $r->{execution_id} }{ $r->{trace}{trace_id} } = 1;
}
close $fh;

for my $x (@ids) {
    is_deeply([ sort @{ $got{$x} // [] } ], $want{$x},
              "$x: each of its records once");
    is(scalar keys %{ $trace{$x} // {} }, 1, "$x: one trace_id");
}
is($redis->client->exists('foxgov:dlq'), 0, 'nothing dead-lettered')
    or diag($d->log_text);

is($g->stop, 0, 'nginx stops cleanly');
$redis->stop;
done_testing();
