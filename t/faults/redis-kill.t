#!/usr/bin/perl

# Redis SIGKILLed under load and started again (twice): the workers spool
# what Redis did not acknowledge and drain it when it is back; every call
# served meanwhile ends in the ledger with its three records, once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new;

my $load = $f->load(name => 'redis-kill', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        for (1 .. 2) {
            $f->redis->kill9;
            $l->wait_more(30);          # served while Redis is away
            $f->redis->start;
            $l->wait_more(20);          # and after it is back
        }
    });

$f->check($load);
$f->finish;

done_testing();
