#!/usr/bin/perl

# The spool's file system full: a tmpfs of 256 KiB mounted as the spool
# directory, Redis SIGKILLed under load until the spools fill it, then
# back.  A record that is neither in Redis nor in the spool is logged at
# alert with its envelope_hash and counted failed (exactly as many as the
# alerts).  What served == recorded means here: a call whose evidence
# could not all be kept must not have been forwarded (strict: 503
# evidence_unavailable; async: 503 evidence_error when its AuthContext or
# decision cannot be kept); every call that was forwarded has its three
# records in the ledger once, and so has every other call with none lost.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;

FoxGov::Test::Faults::requirements();

plan skip_all => 'mounting a tmpfs as the spool needs root' if $> != 0;

my $mnt = tempdir('foxgov-spoolfs-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $uid = getpwnam('nobody') // 0;
system('mount', '-t', 'tmpfs', '-o', "size=256k,mode=0755,uid=$uid",
       'foxgov-spool', $mnt) == 0
    or plan skip_all => 'cannot mount a tmpfs here (a container without '
                        . 'CAP_SYS_ADMIN?)';
my $mounted = 1;
END { system('umount', '-l', $mnt) if $mounted }

my $f = FoxGov::Test::Faults->new(strict => 1, spool => $mnt);
my $full = qr/a (\w+) record \(([0-9a-f]{64})\) is neither in redis nor in the spool: (.*)/;
my $no_room = qr/no room in the spool for the evidence of (\S+):/;

my $load = $f->load(name => 'spool-full', before => 40, after => 60,
    timeout => 50,
    fault => sub {
        my ($l) = @_;
        $f->redis->kill9;
        ok(FoxGov::Test::Faults::wait_until(30, sub {
               $f->nginx->read_file('error.log') =~ /$full|$no_room/ }),
           'the spool file system filled up');
        $l->wait_more(40);              # served with the spool full
        $f->redis->start;
    });

# every record lost, and the calls they belong to: the alerts name the
# envelope_hash ("neither in redis nor in the spool") and, for a record
# the call could not hand over, its type and execution id ("cannot be
# sent"); the debug log's evidence lines map the other hashes to calls
my $log = $f->nginx->read_file('error.log');
my (%failed, %lost);
while ($log =~ /$full/g) { $failed{$2} = $1 }
my %exec_of = map { $_->{hash} => $_->{execution_id} } $f->gateway->records;
while ($log =~ /the (\w+) record of (\S+) cannot be sent/g) {
    $lost{$2}{$1} = 1;
}
# calls refused before any record: no room could be held for their
# evidence (docs/spool.md, "Room held"); they have no record to lose
my %unkept;
while ($log =~ /$no_room/g) {
    $unkept{$1} = 1;
}
for my $h (keys %failed) {
    $lost{ $exec_of{$h} }{ $failed{$h} } = 1 if $exec_of{$h};
}
my %status_of = map { $_->[2] => "$_->[0] $_->[1]" } @{ $load->{answers} };
my $alerts = 0;
$alerts++ while $log =~ /$full/g;

# the spool full, calls are refused before their first record (no room
# to hold for it), or a record finds no room: either way it is said
cmp_ok($alerts + keys %unkept, '>', 0, 'the full spool refused calls ('
       . scalar(keys %unkept) . ") or records ($alerts records of "
       . scalar(keys %lost) . ' calls)');
my $m = $f->metrics;
is($m->{'foxgov_evidence_records_total{result="failed"}'}, $alerts,
   'the failed counter counts each alert');
is(scalar(grep { !$status_of{$_} } keys %lost), 0,
   'each lost record is one of a call of the load');

# forwarded (200) although its AuthContext or decision was lost: never;
# forwarded and its call record lost (the spool filled while it ran):
# counted and said, it cannot be refused any more
my @forwarded = grep { ($status_of{$_} // '') =~ / 200$/ } keys %lost;
is(scalar(grep { ($status_of{$_} // '') !~ / 503$/ } keys %unkept), 0,
   'each call with no room for its evidence was refused 503 ('
   . scalar(keys %unkept) . ' calls)');
my @bad = grep { $lost{$_}{AuthContext} || $lost{$_}{PolicyDecisionRecord} }
          @forwarded;
is(scalar @bad, 0, 'no call whose AuthContext or decision was lost was '
                   . 'forwarded')
    or diag(join "\n", map { "$_: $status_of{$_}" } @bad[0 ..
        ($#bad > 9 ? 9 : $#bad)]);
# the room held for a forwarded call's records: none of them is lost
is(scalar @forwarded, 0, 'no forwarded call lost a record (the room it '
                         . 'held in the spool took it)')
    or diag(join "\n", map { "$_: " . join(' ', sort keys %{ $lost{$_} }) }
            @forwarded[0 .. ($#forwarded > 9 ? 9 : $#forwarded)]);
my $refused = grep { ($status_of{$_} // '') =~ / 503$/ } keys %lost;
note("$refused calls with lost evidence were refused 503");

my $counters = $f->evidence_counters;
$f->check($load, lost => { map { $_ => 1 } keys %lost, keys %unkept },
    counters => $counters,
    alerts => qr/is neither in redis nor in the spool|cannot be sent|no room in the spool for the evidence of/);
$f->finish;

done_testing();
