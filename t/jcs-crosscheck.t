#!/usr/bin/perl
# Golden vectors checked against an independent RFC 8785 implementation
# (the npm `canonicalize` package, installed by the test command from
# bench/jcs/package-lock.json): our canonical bytes in vectors/ are not
# only what our code writes, they are what JCS says.  Also checks that the
# copy of the RFC's test data in vectors/rfc8785 is the shared one.

use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Spec;

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $script = "$top/bench/jcs/crosscheck.js";

plan skip_all => 'node is not installed'
    unless grep { -x "$_/node" } split /:/, $ENV{PATH};
plan skip_all => 'npm packages not installed (run npm ci in bench/jcs)'
    unless -d "$top/bench/jcs/node_modules/canonicalize";

my @dirs = ("$top/vectors/jcs/valid", "$top/vectors/rfc8785",
            glob("$top/vectors/records/*"));

for my $dir (@dirs) {
    my $out = qx(node "$script" "$dir" 2>&1);
    my $rc = $? >> 8;
    my ($ok, $bad) = $out =~ /crosscheck: (\d+) ok, (\d+) mismatched/;
    (my $name = $dir) =~ s{^\Q$top\E/}{};
    is($rc, 0, "$name: canonicalize agrees with every vector")
        or diag($out);
    ok(defined $ok && $ok >= 2 && $bad == 0, "$name: $ok vectors compared");
}

# the RFC data we test with is the shared copy, byte for byte
my $shared = "$top/../shared/vectors/rfc8785";
SKIP: {
    skip 'no ../shared/vectors/rfc8785 beside this checkout', 1
        unless -d $shared;
    my $diff = qx(diff -r "$shared" "$top/vectors/rfc8785" 2>&1);
    is($diff, '', 'vectors/rfc8785 is identical to ../shared/vectors/rfc8785');
}

done_testing();
