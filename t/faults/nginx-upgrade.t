#!/usr/bin/perl

# A binary upgrade under load (nginx as a daemon, as in production): USR2
# starts a new master with the binary (the same one) beside the old,
# Redis is SIGKILLed, WINCH makes the old workers finish their calls and
# exit (their spools holding records), QUIT ends the old master, Redis
# comes back.  The new workers adopt the old workers' spool files and
# send them: every served call's records are in the ledger once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new(daemon => 1);
my $wait = \&FoxGov::Test::Faults::wait_until;

# The children of a master that are not zombies.
sub children {
    my ($master) = @_;
    my @c;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($state, $ppid) = $line =~ /\) (\S) (\d+) / or next;
        push @c, $stat =~ m{^/proc/(\d+)/} if $ppid == $master
                                              && $state ne 'Z';
    }
    return @c;
}

my ($old, $new, @old_workers);

my $load = $f->load(name => 'nginx-upgrade', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        $old = $f->master;
        @old_workers = children($old);
        kill 'USR2', $old;
        $new = $wait->(20, sub {
            my $p = $f->master;
            # nginx.pid is renamed .oldbin before the new one is written
            $p =~ /^\d+$/ && $p ne $old && -e $f->dir . '/nginx.pid.oldbin'
                && kill(0, $p) && children($p) == 2 ? $p : 0;
        });
        ok($new, "USR2: a new master ($new) with two workers")
            or return;
        $f->daemon_started($new);
        $l->wait_more(30);              # both generations serve

        $f->redis->kill9;
        $l->wait_more(20);              # both spool

        kill 'WINCH', $old;
        ok($wait->(20, sub { !grep { kill 0, $_ } @old_workers }),
           'WINCH: the old workers finished and exited');
        $l->wait_more(20);

        ok($f->stop_master($old), 'QUIT: the old master exited');
        ok(scalar(grep { /spool-(\d+)/ && grep { $_ == $1 } @old_workers }
                  keys %{ $f->spool_state }),
           'the old workers left spool files');
        $f->redis->start;
    });

$f->check($load);
my $log = $f->nginx->read_file('error.log');
my @adopted = $log =~ /adopted \d+ records from spool \S+\/spool-(\d+)\.fgs/g;
my %ow = map { $_ => 1 } @old_workers;
ok(scalar(grep { $ow{$_} } @adopted),
   "the new workers adopted the old workers' spools (@adopted)");
$f->finish;

done_testing();
