#!/usr/bin/perl

# foxgov-ledgerd on PostgreSQL under load: the server stopped (fast
# shutdown) and started again, then crashed (SIGKILL) and started again
# (crash recovery).  The daemon rides it out (a batch is one transaction:
# one cut off is rolled back and read again); every served call's
# records are in foxgov.ledger once and foxgov verify accepts each
# tenant's ledger.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;
use FoxGov::Test::Postgres;

FoxGov::Test::Faults::requirements();

my $pg = FoxGov::Test::Postgres->new;     # skip_all without PostgreSQL
$pg->start;

my $f = FoxGov::Test::Faults->new(ledger => $pg->uri, pg => $pg);

my $load = $f->load(name => 'postgres-restart', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        $pg->stop;
        $l->wait_more(30);              # served, the ledger away
        $pg->start;
        $l->wait_more(30);
        $pg->kill9;
        $l->wait_more(30);
        $pg->start;
    });

$f->check($load);
ok($f->ledgerd->log_text =~ /stopping: \d+ appended/,
   'the daemon that rode it out stopped as usual');
$f->finish;
$pg->stop;

done_testing();
