#!/usr/bin/perl

# The policy bundle replaced under load (check=1s, ttl=15s): by a corrupt
# file, by an unsigned bundle, then removed.  Each is refused and the last
# good bundle keeps deciding (calls are served, decided by its revision)
# until ttl has passed since its last good check; then governed calls
# answer 503 policy_unavailable (recorded); a good bundle put back is
# loaded and calls are served again.  Every call answered with an
# execution id has its three records in the ledger once.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../lib";

use File::Copy qw(copy);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Faults;
use FoxGov::Test::Fixtures qw(build_bundle);
use FoxGov::Test::Gateway qw(standard_policy);

FoxGov::Test::Faults::requirements();

my $f = FoxGov::Test::Faults->new(gateway => { check => '1s',
                                               ttl => '15s' });
my $g = $f->gateway;
my $bundle = $g->bundle_path;
my $wait = \&FoxGov::Test::Faults::wait_until;

sub lines { my $re = shift; my @m = $f->nginx->read_file('error.log') =~ /$re/g;
            return scalar @m }
my $refused = qr/policy bundle "[^"]*" refused/;
my $loaded = qr/policy bundle "[^"]*" revision "([^"]+)" loaded/;

# put $file in the bundle's place (atomically) and wait until both
# workers logged $re once more
sub swap {
    my ($file, $re, $what) = @_;
    my $n = $re ? lines($re) : 0;
    if (defined $file) {
        rename $file, $bundle or die "rename $file: $!";
    } else {
        unlink $bundle or die "unlink $bundle: $!";
    }
    ok($wait->(10, sub { lines($re) >= $n + 2 }), "$what: both workers "
       . 'noticed') if $re;
}

my $load = $f->load(name => 'bundle-swap', before => 20, after => 20,
    clients => 2, pace => 0.1, timeout => 50,
    fault => sub {
        my ($l) = @_;

        my $bad = $g->dir . '/corrupt.tar.gz';
        open my $fh, '>:raw', $bad or die $!;
        print {$fh} "\x1f\x8b\x08\x00" . ('not a bundle ' x 50);
        close $fh;
        swap($bad, $refused, 'a corrupt bundle');
        $l->wait_more(10);
        is($f->probe('bundle-swap'), 200, 'a corrupt bundle: the last '
           . 'good one decides');

        my $unsigned = build_bundle(dir => $g->dir . '/unsigned-src',
            policy => { default => 'ALLOW', rules => [] },
            revision => 'r-unsigned', tar => 1,
            out => $g->dir . '/unsigned.tar.gz');
        swap($unsigned, $refused, 'an unsigned bundle');
        $l->wait_more(10);
        is($f->probe('bundle-swap'), 200, 'an unsigned bundle: the last '
           . 'good one decides');

        swap(undef, undef, 'removed');
        sleep 2.5;                      # two checks of each worker
        $l->wait_more(5);
        is($f->probe('bundle-swap'), 200, 'removed: the last good one '
           . 'decides');

        ok($wait->(25, sub { $f->probe('bundle-swap') == 503 }),
           'past ttl since its last good check: 503');
        $l->wait_more(10);

        my $n = lines($loaded);
        $g->write_bundle(standard_policy(), revision => 'r-good2');
        ok($wait->(10, sub { lines($loaded) >= $n + 2 }),
           'a good bundle put back is loaded by both workers');
        ok($wait->(10, sub { $f->probe('bundle-swap') == 200 }),
           'and calls are served again');
    });

my $res = $f->check($load);

my @a = @{ $load->{answers} };
is(scalar(grep { $_->[1] !~ /^(?:200|403|503)$/ } @a), 0,
   'no status but 200, 403 and 503');
ok(($res->{statuses}{503} // 0) > 0, 'calls were refused 503 once stale');

my %rev;
for my $t ($f->tenants) {
    $rev{ $_->{bundle_revision} // 'none' }++
        for grep { $_->{record_type} eq 'PolicyDecisionRecord' }
            $f->ledger_records($t);
}
note(explain(\%rev));
is(scalar(grep { !/^(?:r1|r-good2|none)$/ } keys %rev), 0,
   'every decision was made by a good bundle (r1, r-good2) or none')
    or diag(explain(\%rev));

$f->finish;

done_testing();
