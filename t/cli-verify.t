#!/usr/bin/perl

# foxgov verify on a ledger file built here from the record vectors (the
# chain computed in Perl, independently of core/): a whole ledger
# verifies; each tampering is caught at its place: one byte changed in
# any line, a line deleted, two lines swapped, the tail torn, a record
# appended twice, a call record without its decision before it, a record
# that is not schema-valid, the ledger passed off as another tenant's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256 sha256_hex);
use File::Temp qw(tempdir);
use Test::More;

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $top = "$FindBin::Bin/..";
my $dir = tempdir('foxgov-verify-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);

sub slurp {
    my ($p) = @_;
    open my $fh, '<:raw', $p or die "$p: $!";
    local $/;
    my $s = <$fh>;
    $s =~ s/\n\z//;
    return $s;
}

# The records of the vector flows, in the order the gateway makes them.
my @records;
for my $flow (qw(openai-chat-completion anthropic-streaming
                 servicenow-incident-read servicenow-write-held)) {
    my $call = -e "$top/vectors/records/ModelCallRecord/valid-$flow.canon"
             ? 'ModelCallRecord' : 'ToolCallRecord';
    push @records, map { slurp("$top/vectors/records/$_/valid-$flow.canon") }
                   'AuthContext', 'PolicyDecisionRecord', $call;
}

# Lines of a ledger of @recs for $tenant (docs/ledger.md).
sub lines {
    my ($tenant, @recs) = @_;
    my $chain = sha256("foxgov-ledger-v1:$tenant");
    my ($seq, @l) = (0);
    for my $r (@recs) {
        my $h = sha256($r);
        $chain = sha256($chain . $h);
        $seq++;
        push @l, sprintf('{"chain":"%s","envelope_hash":"%s","record":%s,'
                         . '"seq":%d}', unpack('H*', $chain), unpack('H*', $h),
                         $r, $seq);
    }
    return @l;
}

sub write_ledger {
    my ($name, $text) = @_;
    my $p = "$dir/$name";
    open my $fh, '>:raw', $p or die "$p: $!";
    print $fh $text;
    close $fh;
    return $p;
}

# verify(name, text, args...) -> (rc, stdout, stderr)
sub verify {
    my ($name, $text, @args) = @_;
    return run_foxgov('verify', write_ledger($name, $text), @args);
}

my @good = lines('acme', @records);
my $good = join("\n", @good) . "\n";

{
    my ($rc, $out, $err) = verify('good', $good);
    is($rc, 0, 'a whole ledger verifies') or diag($err);
    like($out, qr/verified: tenant acme, 12 records, seq 1\.\.12, chain [0-9a-f]{64}$/,
         'with a summary naming the chain head');
    ($rc) = verify('good', $good, '--tenant', 'acme');
    is($rc, 0, 'and with --tenant acme');
}

# one byte changed in each line: caught at that line's seq
for my $i (0 .. $#good) {
    my @l = @good;
    my $pos = int(length($l[$i]) * ($i + 1) / (@good + 1));
    my $c = substr($l[$i], $pos, 1);
    substr($l[$i], $pos, 1) = $c eq 'a' ? 'b' : ($c eq '1' ? '2' : 'a');
    my ($rc, undef, $err) = verify("byte-$i", join("\n", @l) . "\n");
    my $seq = $i + 1;
    is($rc, 1, "a byte of line $seq changed: refused");
    like($err, qr/^foxgov verify: \S+: seq $seq \(line $seq\): /,
         "and named at seq $seq") or diag($err);
}

{
    my @l = @good;
    splice @l, 4, 1;
    my ($rc, undef, $err) = verify('deleted', join("\n", @l) . "\n");
    is($rc, 1, 'a line deleted: refused');
    like($err, qr/seq 6 \(line 5\): seq 6 follows seq 4/, 'where it was');

    @l = @good;
    @l[4, 5] = @l[5, 4];
    ($rc, undef, $err) = verify('swapped', join("\n", @l) . "\n");
    is($rc, 1, 'two lines swapped: refused');
    like($err, qr/seq 6 \(line 5\): seq 6 follows seq 4/, 'where they were');

    ($rc, undef, $err) = verify('torn', substr($good, 0, length($good) - 30));
    is($rc, 1, 'a torn last line: refused');
    like($err, qr/seq 12 \(line 12\): /, 'at the last seq');
}

{
    # the same record twice, with a chain that is right
    my @l = lines('acme', @records, $records[0]);
    my ($rc, undef, $err) = verify('twice', join("\n", @l) . "\n");
    is($rc, 1, 'a record appended twice: refused');
    like($err, qr/seq 13 .*in the ledger already/, 'named') or diag($err);

    # a call record before its decision
    @l = lines('acme', @records[0, 2]);
    ($rc, undef, $err) = verify('orphan', join("\n", @l) . "\n");
    is($rc, 1, 'a call record without its decision before it: refused');
    like($err, qr/seq 2 .*names no PolicyDecisionRecord before it/, 'named')
        or diag($err);

    # a record that is not schema-valid (no trace), with right hashes
    (my $bad = $records[0]) =~ s/,"trace":\{[^}]*\}//;
    @l = lines('acme', $bad);
    ($rc, undef, $err) = verify('invalid', join("\n", @l) . "\n");
    is($rc, 1, 'a record that is not schema-valid: refused');
    like($err, qr/seq 1 .*trace/, 'with the validator\'s line') or diag($err);

    # passed off as another tenant's: the genesis differs
    ($rc, undef, $err) = verify('good', $good, '--tenant', 'other');
    is($rc, 1, 'verified as another tenant\'s: refused');
    like($err, qr/seq 1 \(line 1\): seq 1: chain is not/, 'at seq 1')
        or diag($err);

    ($rc, undef, $err) = verify('empty', '');
    is($rc, 1, 'an empty ledger: refused');
    ($rc, undef, $err) = run_foxgov('verify', "$dir/nonexistent");
    is($rc, 2, 'no such file: usage error');
    like($err, qr/^foxgov verify: .*No such file/, 'in one line');
}

done_testing();
