#!/usr/bin/perl

# nginx reloaded (SIGHUP) under load: twice with Redis up, then once while
# Redis is away, so the old workers exit holding records in their spools.
# Every served call's records reach the ledger once; no spool file is
# left with records in it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new;

# SIGHUP, and wait until the workers are new ones.
sub reload {
    my ($l) = @_;
    my %old = map { $_ => 1 } $f->gateway->workers;
    kill 'HUP', $f->master;
    FoxGov::Test::Faults::wait_until(20, sub {
        my @w = $f->gateway->workers;
        @w == 2 && !grep { $old{$_} } @w;
    }) or diag('the old workers did not exit');
}

my $load = $f->load(name => 'nginx-reload', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        reload($l);
        $l->wait_more(30);
        reload($l);
        $l->wait_more(30);
        $f->redis->kill9;
        $l->wait_more(20);              # the workers spool
        reload($l);
        $l->wait_more(30);              # the new workers spool too
        $f->redis->start;
    });

$f->check($load);
$f->finish;

done_testing();
