#!/usr/bin/perl

# foxgov_evidence strict: a call is forwarded only once Redis has
# acknowledged its AuthContext and PolicyDecisionRecord, so they are in
# Redis when the answer comes; with Redis down the call is answered 503
# evidence_unavailable without reaching the upstream, while async
# locations go on serving, and the refused call is recorded once Redis is
# back; with a Redis that never answers, a strict call is suspended (not
# blocking: async calls on the same worker are served meanwhile) and
# answered 503 when timeout= passes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use JSON::PP;
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

# A gateway with a strict location /strict/, sending to $addr.
sub gateway {
    my ($addr, $timeout) = @_;
    my $g = FoxGov::Test::Gateway->new(config => <<'EOF');
        location /strict/ {
            rewrite ^/strict(/.*)$ $1 break;
            foxgov_evidence strict;
            foxgov_call model openai;
            foxgov_credential openai file=%%DIR%%/creds/openai_default;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
EOF
    my $d = $g->dir;
    $g->{opts}{config} =~ s/%%DIR%%/$d/g;
    $g->with_redis($addr, redis => "connect_timeout=300ms timeout=$timeout");
    $g->start;
    return $g;
}

sub call {
    my ($g, $path) = @_;
    return $g->request(POST => "$path/v1/chat/completions",
        token => $g->token,
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => 'hello' } ] });
}

# ----------------------------------------------------------- Redis up

my $redis = FoxGov::Test::Redis->new;
$redis->start;
my $g = gateway($redis->addr, '1s');

{
    $g->upstream->clear_log;
    my $r = call($g, '/strict');
    is($r->{status}, 200, 'strict, Redis up: forwarded');
    is(scalar $g->upstream->requests, 1, 'the upstream was called once');
    my $exec = $r->{headers}{'foxgov-execution-id'};

    # no waiting: they were acknowledged before the call was forwarded
    my $by = $redis->by_execution('acme');
    ok($by->{$exec}{AuthContext} && $by->{$exec}{PolicyDecisionRecord},
       'its AuthContext and decision were in Redis before the answer');
    is($by->{$exec}{PolicyDecisionRecord}[0]{h},
       $r->{headers}{'foxgov-decision-hash'},
       'the decision in Redis is the one the answer names');
}

# -------------------------------------------------------- Redis down

$redis->kill9;
{
    $g->upstream->clear_log;
    my $t0 = time();
    my $r = call($g, '/strict');
    my $dt = time() - $t0;
    is($r->{status}, 503, 'strict, Redis down: 503');
    is($r->{json}{error}{code}, 'evidence_unavailable',
       'OpenAI-shaped error evidence_unavailable');
    cmp_ok($dt, '<', 0.5, 'at once, not after a timeout');
    is(scalar $g->upstream->requests, 0, 'the upstream was not called');
    my $refused = $r->{headers}{'foxgov-execution-id'};

    my $a = call($g, '');
    is($a->{status}, 200, 'an async location is served meanwhile');

    $redis->start;
    my ($by, $missing) = $redis->wait_calls('acme', 15, $refused,
        $a->{headers}{'foxgov-execution-id'});
    is($missing, 0, 'once Redis is back, both calls are recorded');
    my $rec = $by->{$refused}{ModelCallRecord}[0]{rec};
    is($rec && $rec->{status}, 503,
       'the refused call\'s record says 503');
}

# wait until the worker is connected again (and the spool drained)
{
    my $deadline = time() + 10;
    my $r;
    while (time() < $deadline) {
        $r = call($g, '/strict');
        last if $r->{status} == 200;
        sleep 0.2;
    }
    is($r->{status}, 200, 'strict calls are forwarded again');
}

is($g->stop, 0, 'nginx stops cleanly');
$redis->stop;
{
    my ($ok, @bad) = $g->nginx->error_log_ok;
    ok($ok, 'no alert') or diag(join "\n", @bad);
}

# ------------------------------------------- a Redis that never answers

my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 16, ReuseAddr => 1)
    or die "listen: $!";
my $mute_pid = fork();
die "fork: $!" unless defined $mute_pid;
if ($mute_pid == 0) {
    my @conns;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 60;
    while (my $c = $mute->accept) { push @conns, $c }
    POSIX::_exit(0);
}
my $mport = $mute->sockport;
close $mute;

my $m = gateway("127.0.0.1:$mport", '1500ms');
{
    my $out = $m->dir . '/strict.out';
    my $t0 = time();
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        my $r = call($m, '/strict');
        open my $fh, '>', $out;
        printf $fh "%s %s %.3f\n", $r->{status},
               $r->{json}{error}{code} // '-', time() - $t0;
        close $fh;
        POSIX::_exit(0);
    }

    sleep 0.2;
    my ($n, $slowest) = (0, 0);
    while (time() - $t0 < 1.0) {
        my $s = time();
        my $r = call($m, '');
        $slowest = time() - $s if time() - $s > $slowest;
        $n++ if $r->{status} == 200;
        last if $n >= 10;
    }
    cmp_ok($n, '>=', 5, "async calls served while a strict one waits ($n)");
    cmp_ok($slowest, '<', 0.5, 'none of them waited for Redis');

    waitpid $pid, 0;
    open my $fh, '<', $out or die "$out: $!";
    my ($status, $code, $dt) = split ' ', scalar <$fh>;
    is($status, 503, 'the strict call is answered 503');
    is($code, 'evidence_unavailable', 'evidence_unavailable');
    cmp_ok($dt, '>=', 1.2, "once timeout= passed ($dt s)");
    cmp_ok($dt, '<', 5, 'and not much later');
}

# a strict call whose client goes away while it waits: nothing resumes it,
# the worker goes on
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:'
                                  . $m->nginx->port(8080)) or die "$!";
    my $body = '{"model":"gpt-4o-2024-08-06","messages":[{"role":"user",'
             . '"content":"gone"}]}';
    print $s "POST /strict/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        . 'Authorization: Bearer ' . $m->token . "\r\n"
        . "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    sleep 0.3;
    close $s;
    sleep 2;                    # past timeout=: the replies never come
    my $r = call($m, '');
    is($r->{status}, 200, 'after a strict caller left, the worker serves');
}

is($m->stop, 0, 'nginx stops cleanly');
kill 'TERM', $mute_pid;
waitpid $mute_pid, 0;
{
    my ($ok, @bad) = $m->nginx->error_log_ok;
    ok($ok, 'no alert') or diag(join "\n", @bad);
}

done_testing();
