#!/usr/bin/perl

# foxgov-ledgerd SIGKILLed under load and started again: first under the
# same consumer name (it reads its own pending entries first and finds
# the appended ones in the ledger), then once more under another name
# with a short --claim-idle (it claims the dead consumer's pending
# entries).  Every served call's records are in the ledger once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new;

# The lines of acme's ledger file.
sub appended {
    open my $fh, '<', $f->dir . '/ledger/acme/ledger.jsonl' or return 0;
    my $n = 0;
    $n++ while <$fh>;
    return $n;
}

# Kill the daemon once it has appended something since $n records.
sub kill_after_append {
    my ($l, $n) = @_;
    ok(FoxGov::Test::Faults::wait_until(15, sub { appended() > $n }),
       "the daemon appended (more than $n)");
    $f->ledgerd->kill9;
}

my $load = $f->load(name => 'ledgerd-kill', before => 40, after => 60,
    fault => sub {
        my ($l) = @_;
        kill_after_append($l, 0);
        $l->wait_more(30);                  # served while it is away
        $f->start_ledgerd;                  # the same consumer
        $l->wait_more(20);
        kill_after_append($l, appended());
        $l->wait_more(20);
        $f->start_ledgerd(new_consumer => 1, args => [ '--claim-idle',
                                                       '1s' ]);
    });

$f->check($load);
like(join('', map { $f->nginx->read_file("$_") }
          glob($f->dir . '/ledgerd-*.log')),
     qr/stopping: \d+ appended/, 'the last daemon stopped and said so');
$f->finish;

done_testing();
