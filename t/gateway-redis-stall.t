#!/usr/bin/perl

# Redis that accepts the connection and never answers (a stalled server,
# a full network buffer) must not stall the worker: calls are served as
# fast as without Redis, the records waiting for a reply are given up to
# the spool when timeout= passes, and the worker says so.

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
use FoxGov::Test::Gateway;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

# a "Redis" that takes connections and reads, and never writes a byte
my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 16, ReuseAddr => 1)
    or die "listen: $!";
my $port = $mute->sockport;
my $pid = fork();
die "fork: $!" unless defined $pid;
if ($pid == 0) {
    my @conns;
    local $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 60;                           # bounded, whatever the test does
    while (my $c = $mute->accept) {
        push @conns, $c;                # held open, never answered
    }
    POSIX::_exit(0);
}
close $mute;

my $g = FoxGov::Test::Gateway->new;
my $spool = $g->with_redis("127.0.0.1:$port",
    redis => 'connect_timeout=300ms timeout=1500ms');
$g->start;

my $tok = $g->token;
my ($n, $slowest) = (20, 0);
my $start = time();
for my $i (1 .. $n) {
    my $t0 = time();
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => { model => 'gpt-4o-2024-08-06',
                  messages => [ { role => 'user', content => "call $i" } ] });
    my $dt = time() - $t0;
    $slowest = $dt if $dt > $slowest;
    is($r->{status}, 200, "call $i served while Redis does not answer");
}
cmp_ok($slowest, "<", 1.0,
       "no call waited for Redis (slowest ${\ sprintf '%.3f', $slowest} s, "
       . "timeout=1500ms)");

# the records sent and never acknowledged are in the spool after timeout=
my $deadline = time() + 5;
my $bytes = sub { my $b = 0; $b += -s $_ for glob "$spool/spool-*.fgs"; $b };
sleep 0.1 while $bytes->() <= 8 && time() < $deadline;
cmp_ok($bytes->(), '>', 8 + $n * 3 * 300,
       'every record of the calls waits in the spool');
like($g->nginx->read_file('error.log'),
     qr/foxgov: redis: no reply within timeout=/,
     'the worker says why it gave the connection up');

is($g->stop, 0, 'nginx stops cleanly');
kill 'TERM', $pid;
waitpid $pid, 0;

my ($ok, @bad) = $g->nginx->error_log_ok;
ok($ok, 'no alert') or diag(join "\n", @bad);

done_testing();
