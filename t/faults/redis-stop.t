#!/usr/bin/perl

# Redis paused (SIGSTOP) under load for longer than the gateway's
# timeout= (1s), then continued, on a gateway with foxgov_evidence strict
# (and an async location beside it).  Strict calls that Redis could not
# acknowledge in time are answered 503 evidence_unavailable and not
# forwarded; async calls are served from the spool.  Every call answered
# with an execution id (200, 403, 503) has its three records in the
# ledger once, and nothing else is there.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new(strict => 1);

my $load = $f->load(name => 'redis-stop', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        my $pid = $f->redis->{pid};
        kill 'STOP', $pid;
        my $t0 = time();
        $l->wait_more(20);
        # past timeout= (1s) and the strict wait (connect_timeout + timeout)
        sleep 0.1 while time() - $t0 < 2.5;
        kill 'CONT', $pid;
    });

my $res = $f->check($load);
my @a = @{ $load->{answers} };
my $strict503 = grep { $_->[0] ne 'async' && $_->[1] eq '503' } @a;
ok($strict503 > 0, "strict calls were refused while Redis was paused "
                   . "($strict503)");
is(scalar(grep { $_->[0] eq 'async' && $_->[1] ne '200' } @a), 0,
   'async calls were all served');
is(scalar(grep { $_->[1] !~ /^(?:200|403|503)$/ } @a), 0,
   'no other status');
# the upstream saw the calls answered 200, and no refused one
my $up = () = $f->nginx->read_file($f->gateway->upstream->log_path)
              =~ /chat\.postMessage|chat\/completions/g;
is($up, $res->{statuses}{200}, 'only the calls served 200 were forwarded');

$f->finish;

done_testing();
