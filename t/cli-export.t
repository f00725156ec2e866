#!/usr/bin/perl

# Evidence bundles (docs/ledger.md, "Evidence bundles"): foxgov export
# --trace writes every record of a trace with its seq and chain, the
# chain before it, the envelope hashes to its anchor and the signed
# checkpoint (checked here against the chain computed in Perl); foxgov
# verify --bundle checks one offline.  Each tampering is refused naming
# what: a record, a listed hash, the starting chain, the checkpoint, an
# entry dropped, an entry of another trace, the order, the id; an
# untrusted key; a bundle without a checkpoint; export of an unknown
# trace and from a tampered ledger.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256 sha256_hex);
use Encode ();
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use Test::More;

use FoxGov::Test::Evidence qw(flows);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov keygen);
use FoxGov::Test::Ledger qw(ledger_genesis ledger_lines write_ledger
                            canon_record);

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $dir = tempdir('foxgov-export-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $JSON = JSON::PP->new->utf8->canonical;

sub slurp {
    my ($p) = @_;
    open my $fh, '<:raw', $p or die "$p: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($p, $text) = @_;
    open my $fh, '>:raw', $p or die "$p: $!";
    print $fh $text;
    close $fh or die "$p: $!";
    return $p;
}

# the UTF-8 bytes of a string JSON::PP decoded
sub bytes_of {
    my ($s) = @_;
    utf8::encode($s);
    return $s;
}

# A pattern of literal text: the words joined by one space.
sub lit {
    my $s = join(' ', @_);
    return qr/\Q$s\E/;
}

sub cpname { return sprintf('%020d.checkpoint', $_[0]) }

sub trace_of { return ($_[0] =~ /"trace_id":"([0-9a-f]{32})"/)[0] }

# Five calls of three records; the fourth call continues the second's
# trace, so trace B is seq 4..6 and 10..12 with trace C's in between.
my @calls;
{
    my @f = flows('acme', 5, salt => 'export');
    push @calls, [ map { $_->[2] } @f[3 * $_ .. 3 * $_ + 2] ] for 0 .. 4;
    my ($from, $to) = (trace_of($calls[3][0]), trace_of($calls[1][0]));
    s/\Q$from\E/$to/g for @{ $calls[3] };
    $calls[3][1] =~ s/("auth_context_sha256":")[0-9a-f]{64}/
                      $1 . sha256_hex($calls[3][0])/ex;
    $calls[3][2] =~ s/("policy_decision_sha256":")[0-9a-f]{64}/
                      $1 . sha256_hex($calls[3][1])/ex;
}
my @records = map { @$_ } @calls;
my ($TA, $TB, $TC) = map { trace_of($calls[$_][0]) } 0 .. 2;
is(scalar @records, 15, 'fifteen records of four traces');

# the chain after seq $n (0: the genesis), raw
sub chain_at {
    my ($n) = @_;
    my $c = ledger_genesis('acme');
    $c = sha256($c . sha256($_)) for @records[0 .. $n - 1];
    return $c;
}

my ($pem, $jwks) = keygen("$dir/keys", 'log1');
my ($pem2, $jwks2) = keygen("$dir/keys", 'log2');

my $ledger = write_ledger("$dir/acme.ledger", 'acme', @records);
my $cps = "$dir/cps";
make_path($cps);
for my $n (9, 12, 15) {
    my $l = write_ledger("$dir/acme-$n.ledger", 'acme', @records[0 .. $n - 1]);
    my ($rc, undef, $err) = run_foxgov('checkpoint', $l, '--key', $pem,
                                       '-o', $cps);
    die "checkpoint at $n: $err" if $rc != 0;
}
{
    my ($rc, $out, $err) = run_foxgov('verify', $ledger, '--checkpoints',
                                      $cps, '--trusted-key', $jwks);
    is($rc, 0, 'the ledger verifies against checkpoints 9, 12, 15')
        or diag($err);
}

# export(@args) -> (rc, stdout, stderr)
sub export { return run_foxgov('export', @_) }

# vb($file, @more) -> (rc, stdout, stderr) of verify --bundle
sub vb {
    my ($f, @more) = @_;
    return run_foxgov('verify', '--bundle', $f, @more);
}

# The bundle's text for data: bundle_id made again, as a careful forger
# would (unless $keep_id), canonical, with the newline.
sub bundle_text {
    my ($b, $keep_id) = @_;
    my $id = $b->{bundle_id};
    delete $b->{bundle_id};
    $b->{bundle_id} = $keep_id ? $id : sha256_hex(canon_record($b));
    return canon_record($b) . "\n";
}

# ------------------------------------------------------------- export

my $bundle = "$dir/b.json";
my $b;
{
    my ($rc, $out, $err) = export('--trace', $TB, $ledger, '--checkpoints',
                                  $cps, '-o', $bundle);
    is($rc, 0, 'export of trace B anchored at a checkpoint') or diag($err);
    my $want = lit("$bundle: bundle of tenant acme, trace $TB: 6 records",
                   '(seq 4..12), anchored by checkpoint at seq 12',
                   "($cps/00000000000000000012.checkpoint), bundle_id");
    like($out, qr/^$want [0-9a-f]{64}\n\z/,
         'the summary names the smallest checkpoint at or after seq 12');

    my $text = slurp($bundle);
    like($text, qr/\n\z/, 'one newline at the end');
    (my $body = $text) =~ s/\n\z//;
    is(canon_record($body), $body, 'the bundle is canonical JSON');

    $b = $JSON->decode($text);
    is_deeply([sort keys %$b],
              [qw(anchor bundle_id chain_before checkpoint entries
                  envelope_hashes format tenant trace_id version)],
              'its members');
    is($b->{format}, 'foxgov-evidence-bundle', 'format');
    is($b->{version}, 1, 'version');
    is($b->{tenant}, 'acme', 'tenant');
    is($b->{trace_id}, $TB, 'trace_id');
    is_deeply([map { $_->{seq} } @{ $b->{entries} }], [4, 5, 6, 10, 11, 12],
              'every record of the trace, with its seq');
    my @ok = grep {
        my $e = $_;
        my $r = $records[$e->{seq} - 1];
        canon_record($JSON->encode($e->{record})) eq $r
            && $e->{envelope_hash} eq sha256_hex($r)
            && $e->{chain} eq unpack('H*', chain_at($e->{seq}))
    } @{ $b->{entries} };
    is(scalar @ok, 6, 'each with its record, envelope_hash and chain');
    is($b->{chain_before}, unpack('H*', chain_at(3)),
       'chain_before: the chain at seq 3');
    is_deeply($b->{envelope_hashes},
              [map { sha256_hex($_) } @records[3 .. 11]],
              'envelope_hashes: seq 4 to 12, the other trace\'s too');
    is_deeply($b->{anchor}, { chain => unpack('H*', chain_at(12)), seq => 12,
                              type => 'checkpoint' }, 'the anchor');
    is(bytes_of($b->{checkpoint}), slurp("$cps/" . cpname(12)),
       'the checkpoint: the signed note of seq 12');
    my %c = %$b;
    delete $c{bundle_id};
    is($b->{bundle_id}, sha256_hex(canon_record(\%c)),
       'bundle_id: the sha256 of the canonical bundle without it');
    is($b->{bundle_id}, ($out =~ /bundle_id (\S+)/)[0], 'as printed');

    my ($rc2, $out2) = export('--trace', $TB, $ledger, '--checkpoints',
                              $cps);
    is($out2, $text, 'without -o: the same bytes on stdout');
}

{
    my ($rc, $out, $err) = vb($bundle, '--trusted-key', $jwks);
    is($rc, 0, 'verify --bundle: verified') or diag($err);
    is($out, "$bundle: verified bundle: tenant acme, trace $TB, 6 records "
             . "(seq 4..12), anchored by checkpoint at seq 12 signed by "
             . "log1\n", 'the summary');
    is($err, '', 'nothing on stderr');

    ($rc, $out) = vb($bundle, '--trusted-key', $pem, '--tenant', 'acme');
    is($rc, 0, 'the trusted key as a PEM, --tenant acme');
    ($rc, undef, $err) = vb($bundle, '--trusted-key', $jwks, '--tenant',
                            'beta');
    is($rc, 1, '--tenant beta: refused');
    like($err, qr/a bundle of tenant acme, not of beta$/, 'named');

    ($rc, $out, $err) = run_foxgov({ stdin => slurp($bundle) }, 'verify',
                                   '--bundle', '-', '--trusted-key', $jwks);
    is($rc, 0, 'from stdin') or diag($err);
    like($out, qr/^<stdin>: verified bundle/, 'named <stdin>');
}

# trace C: seq 7..9, anchored at the checkpoint of seq 9
my $bc;
{
    my ($rc, $out, $err) = export('--trace', $TC, $ledger, '--checkpoints',
                                  $cps);
    is($rc, 0, 'export of trace C') or diag($err);
    $bc = $JSON->decode($out);
    is($bc->{anchor}{seq}, 9, 'anchored at checkpoint 9');
    is(scalar @{ $bc->{envelope_hashes} }, 3, 'three hashes listed');
    my $f = spew("$dir/c.json", $out);
    ($rc, $out, $err) = vb($f, '--trusted-key', $jwks);
    like($out, lit(": verified bundle: tenant acme, trace $TC, 3 records",
                   '(seq 7..9), anchored by checkpoint at seq 9 signed by',
                   "log1\n"),
         'verified') or diag($err);
}

# trace A from seq 1: chain_before is the genesis
{
    my ($rc, $out, $err) = export('--trace', $TA, $ledger, '--checkpoints',
                                  $cps);
    my $ba = $JSON->decode($out);
    is($ba->{chain_before}, unpack('H*', ledger_genesis('acme')),
       'trace A from seq 1: chain_before is the genesis');
    ($rc, $out, $err) = vb(spew("$dir/a.json", $out), '--trusted-key',
                           $jwks);
    is($rc, 0, 'verified') or diag($err);

    # another chain_before, every chain made again from it
    my $c = sha256('forged');
    $ba->{chain_before} = unpack('H*', $c);
    my %pos = map { $ba->{entries}[$_]{seq} => $_ } 0 .. 2;
    for my $i (0 .. $#{ $ba->{envelope_hashes} }) {
        $c = sha256($c . pack('H*', $ba->{envelope_hashes}[$i]));
        $ba->{entries}[$pos{$i + 1}]{chain} = unpack('H*', $c)
            if exists $pos{$i + 1};
    }
    ($rc, $out, $err) = vb(spew("$dir/a-forged.json", bundle_text($ba)),
                           '--trusted-key', $jwks);
    is($rc, 1, 'a forged start at seq 1: refused');
    like($err, lit(': chain_before is not the genesis of tenant acme, and',
                   "the first entry is at seq 1\n"),
         'named') or diag($err);
}

# ----------------------------------------------------------- tampering

# tamper($name, $edit, $keep_id) -> (rc, stdout, stderr) of the edited copy
sub tamper {
    my ($name, $edit, $keep_id) = @_;
    my $d = $JSON->decode(slurp($bundle));
    $edit->($d);
    (my $base = $name) =~ s/[^a-z0-9]+/-/g;
    my $f = spew("$dir/t-$base.json", bundle_text($d, $keep_id));
    return vb($f, '--trusted-key', $jwks);
}

sub refused {
    my ($name, $edit, $re, $keep_id) = @_;
    my ($rc, $out, $err) = tamper($name, $edit, $keep_id);
    is($rc, 1, "$name: refused");
    like($err, qr/^foxgov verify: \S+: $re\n\z/, '... naming it')
        or diag($err);
    is($out, '', '... nothing on stdout');
}

my $RECOMPUTED = 'chain is not the chain recomputed from chain_before '
               . 'through envelope_hashes';
my $TO_CHECKPOINT = 'the chain recomputed through envelope_hashes to seq 12 '
                  . 'is not the checkpoint\'s hash';
my $LEFT_OUT = 'which is not in the bundle: a record of the trace was left '
             . 'out';

sub other_hash { return sha256_hex('other ' . $_[0]) }

refused('a record changed', sub {
    $_[0]{entries}[1]{record}{execution_id} =~ s/.$/0/;
}, qr/seq 5: envelope_hash is not the sha256 of the record/);

refused('a record and its envelope_hash changed', sub {
    my $e = $_[0]{entries}[1];
    $e->{record}{execution_id} =~ s/.$/0/;
    $e->{envelope_hash} = sha256_hex(canon_record($e->{record}));
}, qr/seq 5: envelope_hash is not the one envelope_hashes list at seq 5/);

refused('a record, its hash and the listed hash changed', sub {
    my $e = $_[0]{entries}[1];
    $e->{record}{execution_id} =~ s/.$/0/;
    $e->{envelope_hash} = sha256_hex(canon_record($e->{record}));
    $_[0]{envelope_hashes}[1] = $e->{envelope_hash};
}, qr/seq 5: $RECOMPUTED/);

refused('a hash of another trace\'s entry in the list', sub {
    $_[0]{envelope_hashes}[4] = other_hash(8);
}, qr/seq 10: $RECOMPUTED/);

refused('the last listed hash', sub {
    $_[0]{envelope_hashes}[8] = other_hash(12);
}, qr/seq 12: envelope_hash is not the one envelope_hashes list at seq 12/);

refused('a hash listed twice', sub {
    $_[0]{envelope_hashes}[4] = $_[0]{envelope_hashes}[3];
}, qr/envelope_hashes list the same hash at seq 7 and seq 8/);

refused('the starting chain', sub {
    $_[0]{chain_before} = other_hash('before');
}, qr/seq 4: $RECOMPUTED/);

refused('the starting chain and every chain after it', sub {
    my $d = $_[0];
    my $c = sha256('forged');
    $d->{chain_before} = unpack('H*', $c);
    my %pos = map { $d->{entries}[$_]{seq} => $_ } 0 .. 5;
    for my $i (0 .. 8) {
        $c = sha256($c . pack('H*', $d->{envelope_hashes}[$i]));
        $d->{entries}[$pos{$i + 4}]{chain} = unpack('H*', $c)
            if exists $pos{$i + 4};
    }
}, qr/$TO_CHECKPOINT/);

refused('the checkpoint\'s hash', sub {
    my $h = encode_base64(chain_at(11), '');
    $_[0]{checkpoint} =~ s/\n12\n[^\n]+\n/\n12\n$h\n/;
}, qr/the anchor \(seq 12\) is not the checkpoint's seq 12 and hash/);

refused('the checkpoint\'s hash and the anchor', sub {
    my $h = encode_base64(chain_at(11), '');
    $_[0]{checkpoint} =~ s/\n12\n[^\n]+\n/\n12\n$h\n/;
    $_[0]{anchor}{chain} = unpack('H*', chain_at(11));
}, qr/$TO_CHECKPOINT/);

refused('the checkpoint\'s signature', sub {
    $_[0]{checkpoint} =~ s/(log1 .{20})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
}, qr/checkpoint at seq 12: the signature by key log1 does not verify/);

refused('the checkpoint\'s origin', sub {
    $_[0]{checkpoint} =~ s/^foxgov-ledger\/acme\n/foxgov-ledger\/acmf\n/;
}, qr/checkpoint at seq 12: of tenant acmf, not of the bundle's tenant acme/);

refused('the checkpoint garbled', sub {
    $_[0]{checkpoint} =~ s/\n\n/\nmore\n\n/;
}, qr/checkpoint: .*extension lines are not accepted.*/);

refused('the checkpoint removed, the anchor still a checkpoint', sub {
    $_[0]{checkpoint} = undef;
}, qr/the anchor is a checkpoint, but checkpoint is not a signed note/);

refused('a checkpoint added to an unsigned anchor', sub {
    $_[0]{anchor}{type} = 'unsigned_head';
}, qr/the anchor is the unsigned head, but checkpoint is not null/);

refused('the decision dropped', sub {
    splice(@{ $_[0]{entries} }, 1, 1);
}, qr/seq 6: its policy_decision_sha256 names the record at seq 5, $LEFT_OUT/);

refused('the first entry dropped', sub {
    shift @{ $_[0]{entries} };
}, qr/envelope_hashes end at seq 13, not at the anchor's seq 12/);

refused('a call of the trace dropped', sub {
    splice(@{ $_[0]{entries} }, 3, 2);
}, qr/seq 12: its policy_decision_sha256 names the record at seq 11, /
   . $LEFT_OUT);

refused('an entry of another trace added', sub {
    my $e = $bc->{entries}[0];
    splice(@{ $_[0]{entries} }, 3, 0, $e);
}, qr/seq 7: a record of trace $TC, not of the bundle's trace $TB/);

refused('an entry of another trace as the bundle\'s trace', sub {
    $_[0]{trace_id} = $TC;
}, qr/seq 4: a record of trace $TB, not of the bundle's trace $TC/);

refused('two entries swapped', sub {
    @{ $_[0]{entries} }[0, 1] = @{ $_[0]{entries} }[1, 0];
}, qr/seq 4 follows seq 5: entries not in seq order/);

refused('an entry\'s seq moved', sub {
    $_[0]{entries}[5]{seq} = 13;
}, qr/seq 13: beyond envelope_hashes, which end at seq 12/);

refused('the tenant', sub {
    $_[0]{tenant} = 'beta';
}, qr/checkpoint at seq 12: of tenant acme, not of the bundle's tenant beta/);

refused('a member added', sub {
    $_[0]{comment} = 'hello';
}, qr/not an evidence bundle: an object of anchor, .*/);

refused('another version', sub {
    $_[0]{version} = 2;
}, qr/not a foxgov-evidence-bundle of version 1/);

refused('the bundle_id alone', sub {
    $_[0]{bundle_id} = other_hash('id');
}, qr/bundle_id is not the sha256 of the bundle without it/, 1);

refused('a record changed, the bundle_id not made again', sub {
    $_[0]{entries}[1]{record}{execution_id} =~ s/.$/0/;
}, qr/seq 5: envelope_hash is not the sha256 of the record/, 1);

{
    # a byte of the file
    my $t = slurp($bundle);
    my $at = index($t, '"record":{') + 30;
    substr($t, $at, 1) = substr($t, $at, 1) eq 'a' ? 'b' : 'a';
    my ($rc, $out, $err) = vb(spew("$dir/t-byte.json", $t),
                              '--trusted-key', $jwks);
    is($rc, 1, 'a byte of a record in the file changed: refused');
    like($err, qr/: seq 4: envelope_hash is not the sha256 of the record$/,
         'naming the seq') or diag($err);

    ($rc, undef, $err) = vb(spew("$dir/t-space.json", slurp($bundle)
                                 =~ s/,"/, "/r), '--trusted-key', $jwks);
    is($rc, 1, 'a space added: refused');
    like($err, qr/: not in canonical form \(at byte \d+\)$/, 'not canonical');

    ($rc, undef, $err) = vb(spew("$dir/t-two-nl.json",
                                 slurp($bundle) . "\n"), '--trusted-key',
                            $jwks);
    is($rc, 1, 'two final newlines: refused');

    ($rc, undef, $err) = vb(spew("$dir/t-garbage.json", "[1,2"),
                            '--trusted-key', $jwks);
    is($rc, 1, 'not JSON: refused');
    like($err, qr/: not JSON as a bundle must be: /, 'named') or diag($err);
}

# The first entry dropped, the hashes and chain_before made to start after
# it: the chain verifies, and the decision's link leaves the bundle.
{
    my $d = $JSON->decode(slurp($bundle));
    shift @{ $d->{entries} };
    shift @{ $d->{envelope_hashes} };
    $d->{chain_before} = unpack('H*', chain_at(4));
    my $f = spew("$dir/t-cut.json", bundle_text($d));
    my ($rc, $out, $err) = vb($f, '--trusted-key', $jwks);
    is($rc, 0, 'a bundle starting after the AuthContext verifies')
        or diag($err);
    is($out, "$f: seq 5: its auth_context_sha256 names a record outside "
             . "the bundle\n$f: verified bundle: tenant acme, trace $TB, 5 "
             . "records (seq 5..12), 1 link outside the bundle, anchored by "
             . "checkpoint at seq 12 signed by log1\n",
       'and says the link points outside it');
}

# A record whose text needs escapes and is not ASCII: the bundle holds it
# exactly, its hash and chain verify.
{
    my @r = map { $_->[2] } flows('acme', 1, salt => 'escapes');
    my $j = "q\\\"b\\\\ \x{e9} \x{2028} \x{202e} end";
    $r[1] =~ s/"justification":"[^"]*"/"justification":"$j"/ or die;
    $r[1] = canon_record(Encode::encode('UTF-8', $r[1]));
    $r[2] =~ s/("policy_decision_sha256":")[0-9a-f]{64}/
               $1 . sha256_hex($r[1])/ex;
    my $l = write_ledger("$dir/escapes.ledger", 'acme', @r);
    my ($rc, $out, $err) = run_foxgov('verify', $l);
    is($rc, 0, 'a ledger with escapes in a record verifies') or diag($err);
    my $f = "$dir/escapes.json";
    ($rc, $out, $err) = export('--trace', trace_of($r[0]), $l, '-o', $f);
    is($rc, 0, 'exported') or diag($err);
    my $d = $JSON->decode(slurp($f));
    is(canon_record($JSON->encode($d->{entries}[1]{record})), $r[1],
       'the record as the ledger holds it');
    ($rc, $out, $err) = vb($f);
    is($rc, 0, 'and the bundle verifies') or diag($err);
}

# ----------------------------------------------------------------- keys

{
    my ($rc, $out, $err) = vb($bundle, '--trusted-key', $jwks2);
    is($rc, 1, 'an untrusted key: refused');
    my $want = lit('checkpoint at seq 12: no signature by a trusted key',
                   '(signed by log1)');
    like($err, qr/^foxgov verify: \S+: $want$/,
         'naming the signer') or diag($err);
    is($out, '', 'nothing on stdout');

    ($rc, $out, $err) = vb($bundle);
    is($rc, 2, 'a checkpoint and no --trusted-key: usage');
    like($err, qr/give --trusted-key$/, 'said');

    ($rc, undef, $err) = vb("$dir/nonexistent.json", '--trusted-key', $jwks);
    is($rc, 2, 'no such bundle: usage');
    ($rc, undef, $err) = vb($bundle, '--trusted-key', "$dir/nonexistent");
    is($rc, 2, 'no such key file: usage');
    ($rc, undef, $err) = run_foxgov('verify', '--bundle', $bundle, $ledger);
    is($rc, 2, 'a ledger beside --bundle: usage');
    ($rc, undef, $err) = run_foxgov('verify', '--bundle', $bundle,
                                    '--checkpoints', $cps);
    is($rc, 2, '--checkpoints with --bundle: usage');
}

# ------------------------------------------------- signing at export

{
    my $f = "$dir/signed.json";
    my ($rc, $out, $err) = export('--trace', $TB, $ledger, '--key', $pem,
                                  '-o', $f);
    is($rc, 0, 'export --key: signs the head') or diag($err);
    my $want = lit(': 6 records (seq 4..12), anchored by checkpoint at seq',
                   '15 signed now by log1, bundle_id');
    like($out, qr/$want [0-9a-f]{64}$/,
         'said');
    my $d = $JSON->decode(slurp($f));
    is(scalar @{ $d->{envelope_hashes} }, 12, 'the hashes to seq 15');
    my ($rc2, $note) = run_foxgov('checkpoint', $ledger, '--key', $pem);
    is(bytes_of($d->{checkpoint}), $note,
       'the note foxgov checkpoint signs for the head');

    ($rc, $out, $err) = vb($f, '--trusted-key', $jwks);
    is($out, "$f: verified bundle: tenant acme, trace $TB, 6 records (seq "
             . "4..12), anchored by checkpoint at seq 15 signed by log1\n",
       'verified') or diag($err);

    # a directory without a checkpoint at or after seq 12: the key signs
    my $d9 = "$dir/cps-9";
    make_path($d9);
    spew("$d9/" . cpname(9), slurp("$cps/" . cpname(9)));
    ($rc, $out, $err) = export('--trace', $TB, $ledger, '--checkpoints',
                               $d9, '--key', $pem, '-o', "$dir/s9.json");
    like($out, qr/anchored by checkpoint at seq 15 signed now by log1/,
         'no checkpoint in DIR covers seq 12: signed now') or diag($err);
    ($rc, $out, $err) = export('--trace', $TC, $ledger, '--checkpoints',
                               $d9, '--key', $pem, '-o', "$dir/s9c.json");
    like($out, qr/anchored by checkpoint at seq 9 \(/,
         'one that does is preferred') or diag($err);

    ($rc, undef, $err) = export('--trace', $TB, $ledger, '--key',
                                "$dir/keys/log1.jwks.json");
    is($rc, 2, 'a public key cannot sign: usage');
}

# -------------------------------------------------- without checkpoint

{
    my $f = "$dir/unsigned.json";
    my ($rc, $out, $err) = export('--trace', $TB, $ledger, '-o', $f);
    is($rc, 0, 'export without checkpoint or key') or diag($err);
    like($out, lit(': 6 records (seq 4..12), not anchored by a signed',
                   'checkpoint (the head at seq 15), bundle_id'),
         'said');
    my $d = $JSON->decode(slurp($f));
    ok(!defined $d->{checkpoint}, '"checkpoint": null');
    is_deeply($d->{anchor}, { chain => unpack('H*', chain_at(15)), seq => 15,
                              type => 'unsigned_head' },
              'the anchor is the unsigned head');

    ($rc, $out, $err) = vb($f);
    is($rc, 0, 'verifies') or diag($err);
    is($out, "$f: verified bundle: tenant acme, trace $TB, 6 records (seq "
             . "4..12), not anchored by a signed checkpoint\n",
       'not anchored by a signed checkpoint');

    ($rc, $out, $err) = vb($f, '--trusted-key', $jwks);
    is($rc, 1, 'with --trusted-key: refused');
    like($err, lit('not anchored by a signed checkpoint ("checkpoint":',
                   "null), but --trusted-key asks for one\n"),
         'said');

    # the unsigned anchor still ties the entries
    $d->{anchor}{chain} = other_hash('head');
    ($rc, undef, $err) = vb(spew("$dir/unsigned-t.json", bundle_text($d)));
    is($rc, 1, 'an unsigned anchor that is not the chain: refused');
    like($err, lit('the chain recomputed through envelope_hashes to seq 15',
                   "is not the anchor's chain\n"),
         'named');

    # a checkpoint stripped from a signed bundle is an unsigned bundle
    $d = $JSON->decode(slurp($bundle));
    $d->{checkpoint} = undef;
    $d->{anchor}{type} = 'unsigned_head';
    ($rc, $out) = vb(spew("$dir/stripped.json", bundle_text($d)));
    like($out, qr/not anchored by a signed checkpoint$/,
         'a checkpoint stripped: not anchored, and says so');
    ($rc) = vb("$dir/stripped.json", '--trusted-key', $jwks);
    is($rc, 1, 'and refused when a signature is asked for');
}

# ---------------------------------------------------- export refusals

{
    my $none = '0123456789abcdef0123456789abcdef';
    my ($rc, $out, $err) = export('--trace', $none, $ledger);
    is($rc, 1, 'an unknown trace: exit 1');
    is($err, "foxgov export: no record of trace $none in $ledger\n",
       'no record of trace ... in LEDGER');
    is($out, '', 'nothing on stdout');

    for my $bad ('0' x 32, uc($TB), substr($TB, 1), "${TB}0", 'x' x 32) {
        ($rc, undef, $err) = export('--trace', $bad, $ledger);
        is($rc, 2, "--trace $bad: usage");
    }
    like($err, qr/is not a trace id \(32 lowercase hex digits, not all zero\)/,
         'said');

    ($rc) = export($ledger);
    is($rc, 2, 'no --trace: usage');
    ($rc) = export('--trace', $TB, "$dir/nonexistent.ledger");
    is($rc, 2, 'no such ledger: usage');
    ($rc) = export('--trace', $TB, $ledger, '--tenant', 'Acme');
    is($rc, 2, 'a bad --tenant: usage');

    my @l = ledger_lines('acme', @records);
    $l[7] =~ s/"ticket":"INC0012345"/"ticket":"INC0012346"/
        or die 'no ticket label';
    my $bad = spew("$dir/tampered.ledger", join("\n", @l) . "\n");
    my $f = "$dir/from-tampered.json";
    ($rc, $out, $err) = export('--trace', $TC, $bad, '-o', $f);
    is($rc, 1, 'export from a tampered ledger: refused');
    like($err, qr/^foxgov export: \S+: seq 8 \(line 8\): \S.*$/,
         'naming the seq') or diag($err);
    ok(!-e $f, 'no bundle written');
    ($rc, $out, $err) = export('--trace', $TA, $bad);
    is($rc, 1, 'also for a trace before the damage');
    is($out, '', 'nothing on stdout');

    ($rc, $out, $err) = export('--trace', $TB, $ledger, '--tenant', 'beta');
    is($rc, 1, 'the ledger read as another tenant\'s: refused');

    # the checkpoints are checked against the ledger
    my @other = (@records[0 .. 2], @records[6 .. 8], @records[3 .. 5],
                 @records[9 .. 14]);
    my $rw = write_ledger("$dir/rewritten.ledger", 'acme', @other);
    ($rc, undef, $err) = export('--trace', $TB, $rw, '--checkpoints', $cps);
    is($rc, 1, 'a rewritten ledger against its checkpoints: refused');
    like($err, qr/seq 9 \(line 9\): chain is not the hash of its checkpoint/,
         'named') or diag($err);

    my $cut = write_ledger("$dir/cut.ledger", 'acme', @records[0 .. 13]);
    ($rc, undef, $err) = export('--trace', $TB, $cut, '--checkpoints', $cps);
    is($rc, 1, 'a ledger cut below a checkpoint: refused');
    my $want = lit('the ledger ends at seq 14, below its checkpoint at seq',
                   '15');
    like($err, qr/$want \(.*\): entries were removed$/,
         'named') or diag($err);
}

# ------------------------------------------------------------------ help

{
    my ($rc, $out) = run_foxgov('export', '--help');
    is($rc, 0, 'export --help');
    like($out, qr/usage: foxgov export --trace TRACE_ID LEDGER/, 'usage');
    ($rc, $out) = run_foxgov('verify', '--help');
    like($out, qr/foxgov verify --bundle FILE/, 'verify --help names --bundle');
    ($rc, $out) = run_foxgov('--help');
    like($out, qr/^  export /m, 'export is listed');
}

done_testing();
