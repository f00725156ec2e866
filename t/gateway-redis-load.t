#!/usr/bin/perl

# No evidence lost under load (bounded: 4 clients x 60 calls per phase,
# two workers): while the clients run, (a) Redis is SIGKILLed and started
# again, (b) nginx is reloaded, (c) a worker is SIGKILLed.  After each
# phase every call that was served (200, with its execution id) has its
# three records in Redis; records sent twice are counted (the ledger
# dedupes by envelope_hash), none is missing.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(foxgov_bin);
use FoxGov::Test::Gateway qw(parse_response);
use FoxGov::Test::Redis;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};
plan skip_all => 'no /proc (the workers are found there)'
    unless -d '/proc/self';

my ($CLIENTS, $CALLS) = (4, 60);

my $redis = FoxGov::Test::Redis->new;
$redis->start;

my $g = FoxGov::Test::Gateway->new(workers => 2);
$g->with_redis($redis->addr, redis => 'connect_timeout=300ms timeout=1s');
$g->start;

my $port = $g->nginx->port(8080);
my $tok = $g->token;
my $body = '{"model":"gpt-4o-2024-08-06","messages":[{"role":"user",'
         . '"content":"load"}]}';

# One client: $CALLS calls, one connection each; the execution id of each
# 200 is written to $out, one a line.
sub client {
    my ($out) = @_;
    open my $fh, '>', $out or die "$out: $!";
    $fh->autoflush(1);
    for (1 .. $CALLS) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                      Timeout => 10) or next;
        print $s "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Bearer $tok\r\nContent-Type: application/json"
            . "\r\nContent-Length: " . length($body) . "\r\n"
            . "Connection: close\r\n\r\n$body";
        local $/;
        my $resp = <$s>;
        close $s;
        my $r = parse_response($resp);
        print $fh "$r->{headers}{'foxgov-execution-id'}\n"
            if ($r->{status} // 0) == 200;
        sleep 0.01;
    }
    close $fh;
}

# Run the clients; $during->() is called once they are going.  Returns the
# execution ids served.
sub load {
    my ($name, $during) = @_;
    my @pids;
    for my $i (1 .. $CLIENTS) {
        my $pid = fork();
        die "fork: $!" unless defined $pid;
        if ($pid == 0) {
            client($g->dir . "/$name-$i.ids");
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    sleep 0.3;
    $during->();
    my $deadline = time() + 60;
    for my $pid (@pids) {
        while (waitpid($pid, WNOHANG) == 0) {
            if (time() > $deadline) { kill 'KILL', $pid; waitpid $pid, 0 }
            sleep 0.05;
        }
    }
    my @ids;
    for my $i (1 .. $CLIENTS) {
        open my $fh, '<', $g->dir . "/$name-$i.ids" or next;
        chomp(my @l = <$fh>);
        push @ids, grep { length } @l;
    }
    return @ids;
}


# Every served call's records reach Redis; how many twice, in a note.
sub all_recorded {
    my ($name, @ids) = @_;
    cmp_ok(scalar @ids, '>', $CLIENTS * $CALLS * 0.9,
           "$name: the calls were served");
    my ($by, $missing) = $redis->wait_calls('acme', 30, @ids);
    is($missing, 0, "$name: every served call has its three records in "
                    . 'Redis')
        or diag(join "\n", map {
            my $x = $by->{$_} // {};
            "$_ has only: " . join(' ', sort keys %$x)
        } grep {
            my $x = $by->{$_} // {};
            !($x->{AuthContext} && $x->{PolicyDecisionRecord}
              && $x->{ModelCallRecord})
        } @ids);
    note("$name: " . scalar(@ids) . ' calls, '
         . FoxGov::Test::Redis::twice($by, @ids)
         . ' with a record sent twice (the ledger dedupes)');
}

# (a) Redis SIGKILLed in the middle of the load, back 0.5 s later
my @a = load('kill-redis', sub {
    $redis->kill9;
    sleep 0.5;
    $redis->start;
});
all_recorded('redis killed and restarted under load', @a);

# (b) nginx reloaded in the middle of the load
my @b = load('reload', sub {
    kill 'HUP', $g->nginx->read_file('nginx.pid') =~ s/\s+//gr;
});
all_recorded('nginx reloaded under load', @b);

# (c) a worker SIGKILLed in the middle of the load, with Redis down so its
# spool holds records when it dies
my @c = load('kill-worker', sub {
    $redis->kill9;
    sleep 0.3;
    my @w = $g->workers;
    kill 'KILL', $w[0] if @w;
    sleep 0.3;
    $redis->start;
});
all_recorded('a worker killed under load', @c);

is($g->stop, 0, 'nginx stops cleanly');
$redis->stop;

{
    my (undef, @bad) = $g->nginx->error_log_ok;
    my @other = grep { !/worker process \d+ exited on signal 9/ } @bad;
    is(scalar @other, 0, 'no other alert, no sanitizer report')
        or diag(join "\n", @other[0 .. ($#other > 9 ? 9 : $#other)]);
}

done_testing();
