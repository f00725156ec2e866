#!/usr/bin/perl

# Redis slower than the records: paused (SIGSTOP) for less than the
# gateway's timeout= (20s), so the connection stays up, while calls keep
# coming.  What the workers cannot write into the socket waits in
# hiredis's buffer, which backlog=64k bounds: past it the records go to
# the spool, the worker says so once, and the drain sends them when Redis
# is back.  Async calls are all served; every served call has its three
# records in the ledger once; no worker's memory held more than the bound
# (the spool took the rest); nothing was lost (failed 0).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new(
    redis_args => 'connect_timeout=300ms timeout=20s backlog=64k');

my $spooled_max = 0;
my $load = $f->load(name => 'redis-backlog', before => 40, after => 60,
    clients => 8, pace => 0, max => 5000,
    fault => sub {
        my ($l) = @_;
        my $pid = $f->redis->{pid};
        kill 'STOP', $pid;
        my $t0 = time();
        # the kernel's socket buffers fill first (a few hundred KB for a
        # receiver that does not read), then 64k in hiredis, then the spool
        FoxGov::Test::Faults::wait_until(15, sub {
            my $n = $f->spool_bytes;
            $spooled_max = $n if $n > $spooled_max;
            return $n > 256 * 1024;
        });
        # well below timeout=: the connection is not given up
        sleep 0.1 while time() - $t0 < 1;
        kill 'CONT', $pid;
    });

ok($spooled_max > 256 * 1024,
   "records went to the spool while Redis was paused ($spooled_max bytes)");
is(scalar(grep { $_->[1] !~ /^(?:200|403|428)$/ } @{ $load->{answers} }), 0,
   'every call was served as without the pause (200, 403, 428)');

my $log = $f->nginx->read_file('error.log');
like($log, qr/foxgov: redis is behind: \d+ bytes of records wait to be written \(backlog=65536\); records go to the spool until it catches up/,
     'the worker said Redis was behind, with the bound');
unlike($log, qr/redis: (?:connection lost|timed out|no reply)/i,
       'the connection was not given up (the backlog, not the timeout, '
       . 'sent records to the spool)');

$f->check($load);

# once the spools are empty (check waited for it): each spooled record
# was drained once, none failed
my $c = $f->evidence_counters;
like($c, qr/spooled ([1-9]\d*), drained \1, failed 0$/,
     "as many drained as spooled, none failed ($c)");
$f->finish;

done_testing();
