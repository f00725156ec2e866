#!/usr/bin/perl

# Signed checkpoints (docs/ledger.md, "Checkpoints"): foxgov checkpoint
# signs the head of a verified ledger as a C2SP signed note (checked here
# byte for byte against the chain computed in Perl); foxgov verify
# --checkpoints DIR --trusted-key checks them against the ledger.  Each
# attack is refused naming the seq: the ledger cut below a checkpoint,
# the ledger rewritten under one, a checkpoint whose hash, size or
# signature was changed, one signed by an untrusted key or by another key
# of the same name, one of another tenant, one renamed.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64 decode_base64);
use Test::More;

use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov keygen);
use FoxGov::Test::Ledger qw(ledger_lines write_ledger vector_record
                            canon_record record_data);

plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $dir = tempdir('foxgov-checkpoint-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $DASH = "\xe2\x80\x94";

# The records of the vector flows, in the order the gateway makes them.
my @records;
for my $flow (qw(openai-chat-completion anthropic-streaming
                 servicenow-incident-read servicenow-write-held)) {
    my $call = eval { vector_record('ModelCallRecord', $flow) }
             ? 'ModelCallRecord' : 'ToolCallRecord';
    push @records, map { vector_record($_, $flow) }
                   'AuthContext', 'PolicyDecisionRecord', $call;
}
is(scalar @records, 12, 'twelve records from the vectors');

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

sub cpname { return sprintf('%020d.checkpoint', $_[0]) }

# the chain at seq $n of acme's ledger, raw, computed here
sub chain_at {
    my ($n, @recs) = @_;
    my $chain = sha256('foxgov-ledger-v1:acme');
    $chain = sha256($chain . sha256($_)) for @recs[0 .. $n - 1];
    return $chain;
}

my ($pem, $jwks) = keygen("$dir/keys", 'log1');
my ($pem2, $jwks2) = keygen("$dir/keys", 'log2');
my ($pem_es) = keygen("$dir/keys-es", 'es1', 'ES256');
my ($pem_twin, $jwks_twin) = keygen("$dir/keys-twin", 'log1');

my $ledger = write_ledger("$dir/acme.ledger", 'acme', @records);
my $half = write_ledger("$dir/acme-6.ledger", 'acme', @records[0 .. 5]);

# ------------------------------------------------------------- signing

my $note;
{
    my ($rc, $out, $err) = run_foxgov('checkpoint', $ledger, '--key', $pem);
    is($rc, 0, 'checkpoint of a verified ledger: signed') or diag($err);
    $note = $out;

    my $b64 = encode_base64(chain_at(12, @records), '');
    like($note, qr/\Afoxgov-ledger\/acme\n12\n\Q$b64\E\n\n$DASH log1 (\S+)\n\z/,
         'the note: origin, size, the chain at that seq, one signature '
         . 'line by kid log1');
    my ($sig) = $note =~ /$DASH log1 (\S+)\n\z/;
    is(length(decode_base64($sig)), 68, 'a key id and an Ed25519 signature');

    # the key id: sha256(name || "\n" || 0x01 || public key)[:4]
    my $jwk = slurp($jwks);
    my ($x) = $jwk =~ /"x"\s*:\s*"([A-Za-z0-9_-]+)"/;
    (my $std = $x) =~ tr/-_/+\//;
    my $pub = decode_base64($std . '=');
    is(substr(decode_base64($sig), 0, 4),
       substr(sha256("log1\n\x01" . $pub), 0, 4),
       'its key id is the signed-note key hash of the public key');

    my ($rc2, $out2) = run_foxgov('checkpoint', $ledger, '--key', $pem,
                                  '--tenant', 'acme');
    is($out2, $note, 'the same head signs to the same bytes (Ed25519)');
}

my $cps = "$dir/cps";
make_path($cps);
{
    my ($rc, $out, $err) = run_foxgov('checkpoint', $half, '--key', $pem,
                                      '-o', $cps);
    is($rc, 0, 'checkpoint -o DIR at seq 6') or diag($err);
    like($out, qr/^\Q$cps\E\/00000000000000000006\.checkpoint: checkpoint of tenant acme at seq 6, chain [0-9a-f]{64}, signed by log1$/,
         'named for its seq');

    ($rc, $out, $err) = run_foxgov('checkpoint', $ledger, '--key', $pem,
                                   '-o', $cps);
    is($rc, 0, 'and at seq 12') or diag($err);
    is(slurp("$cps/" . cpname(12)), $note, 'the file holds the note');

    ($rc, $out, $err) = run_foxgov('checkpoint', $ledger, '--key', $pem,
                                   '-o', $cps);
    is($rc, 0, 'the same checkpoint again: fine');
    like($out, qr/already there/, 'and said so');

    ($rc, undef, $err) = run_foxgov('checkpoint', $ledger, '--key', $pem2,
                                    '-o', $cps);
    is($rc, 2, 'another key\'s checkpoint at the same seq: not overwritten');
    like($err, qr/exists and differs/, 'with why');
    is(slurp("$cps/" . cpname(12)), $note, 'the file is untouched');
    my @tmp = glob("$cps/.*.tmp");
    is(scalar @tmp, 0, 'no temporary file left');

    ($rc, undef, $err) = run_foxgov('checkpoint', $ledger, '--key', $pem_es);
    is($rc, 2, 'an ES256 key: refused');
    like($err, qr/Ed25519/, 'checkpoints are Ed25519');

    ($rc, undef, $err) = run_foxgov('checkpoint', $ledger, '--key', $jwks);
    is($rc, 2, 'a public key: refused');

    my @l = ledger_lines('acme', @records);
    $l[4] =~ s/"seq":5/"seq":7/;
    my $bad = spew("$dir/bad.ledger", join("\n", @l) . "\n");
    ($rc, my $o, $err) = run_foxgov('checkpoint', $bad, '--key', $pem);
    is($rc, 1, 'a ledger that does not verify: no checkpoint');
    like($err, qr/^foxgov checkpoint: \S+: seq 7 \(line 5\): seq 7 follows seq 4$/,
         'named');
    is($o, '', 'nothing printed');

    ($rc, undef, $err) = run_foxgov('checkpoint', spew("$dir/empty", ''),
                                    '--key', $pem);
    is($rc, 1, 'an empty ledger: nothing to checkpoint');
}

# ----------------------------------------------------------- verifying

# verify($ledger, $cpdir, $trusted, @more) -> (rc, stdout, stderr)
sub verify {
    my ($l, $d, $k, @more) = @_;
    return run_foxgov('verify', $l, '--checkpoints', $d, '--trusted-key',
                      $k, @more);
}

# a copy of the checkpoint directory, with $edit applied to a note
sub cps_with {
    my ($name, $edit) = @_;
    my $d = "$dir/$name";
    make_path($d);
    copy("$cps/$_", "$d/$_") for map { cpname($_) } 6, 12;
    $edit->($d) if $edit;
    return $d;
}

{
    my ($rc, $out, $err) = verify($ledger, $cps, $jwks);
    is($rc, 0, 'the ledger verifies against its checkpoints') or diag($err);
    like($out, qr/verified: tenant acme, 12 records, seq 1\.\.12, chain [0-9a-f]{64}, 2 checkpoints verified \(latest seq 12\)$/,
         'the summary counts them');

    ($rc, $out) = verify($ledger, $cps, $jwks, '--tenant', 'acme');
    is($rc, 0, 'with --tenant too');
    ($rc, $out) = verify($ledger, $cps, $pem);
    is($rc, 0, 'the trusted key as the PEM (kid from its name)');

    spew("$dir/README", 'not a checkpoint');
    my $d = cps_with('with-other-files', sub {
        spew("$_[0]/README", "not a checkpoint\n");
        spew("$_[0]/x.checkpoint.bak", "junk\n");
    });
    ($rc, $out, $err) = verify($ledger, $d, $jwks);
    is($rc, 0, 'other files in the directory are not read') or diag($err);

    $d = "$dir/none";
    make_path($d);
    ($rc, $out) = verify($ledger, $d, $jwks);
    is($rc, 0, 'no checkpoint yet: verifies');
    like($out, qr/, 0 checkpoints verified$/, 'and says none');

    # a longer ledger than the latest checkpoint is fine
    ($rc, $out, $err) = verify($ledger, cps_with('only-6', sub {
        unlink "$_[0]/" . cpname(12);
    }), $jwks);
    is($rc, 0, 'a ledger grown past its checkpoint verifies') or diag($err);
    like($out, qr/1 checkpoint verified \(latest seq 6\)$/, 'one checkpoint');
}

# the ledger cut below a checkpoint
for my $keep (11, 9, 6, 5, 1) {
    my $cut = write_ledger("$dir/cut-$keep.ledger", 'acme',
                           @records[0 .. $keep - 1]);
    my ($rc, $out, $err) = verify($cut, $cps, $jwks);
    is($rc, 1, "the ledger cut to seq $keep: refused");
    like($err, qr/^foxgov verify: \S+: the ledger ends at seq $keep, below its checkpoint at seq 12 \(\S+\/00000000000000000012\.checkpoint\): entries were removed$/,
         'naming both seqs') or diag($err);
    is($out, '', 'nothing on stdout');
}
{
    my ($rc, undef, $err) = verify(spew("$dir/empty2", ''), $cps, $jwks);
    is($rc, 1, 'the ledger emptied: refused');
    like($err, qr/ends at seq 0, below its checkpoint at seq 12/, 'named');
}

# the ledger rewritten under a checkpoint: a valid ledger, another history
{
    my @other = (@records[3 .. 5], @records[0 .. 2], @records[6 .. 11]);
    my $l = write_ledger("$dir/rewritten.ledger", 'acme', @other);
    my ($rc, $out) = run_foxgov('verify', $l);
    is($rc, 0, 'a rewritten ledger verifies on its own');
    my $err;
    ($rc, undef, $err) = verify($l, $cps, $jwks);
    is($rc, 1, 'but not against the checkpoints');
    like($err, qr/^foxgov verify: \S+: seq 6 \(line 6\): chain is not the hash of its checkpoint \(\S+00000000000000000006\.checkpoint\)$/,
         'at the first checkpoint\'s seq') or diag($err);

    # a change past seq 6 shows at seq 12
    @other = (@records[0 .. 5], @records[9 .. 11], @records[6 .. 8]);
    $l = write_ledger("$dir/rewritten-tail.ledger", 'acme', @other);
    ($rc, undef, $err) = verify($l, $cps, $jwks);
    is($rc, 1, 'a tail rewritten: refused');
    like($err, qr/seq 12 \(line 12\): chain is not the hash of its checkpoint/,
         'at seq 12') or diag($err);
}

# checkpoints tampered with
{
    my $b64 = encode_base64(chain_at(12, @records), '');
    my $other = encode_base64(chain_at(11, @records), '');
    my %edits = (
        'hash'      => sub { s/\Q$b64\E/$other/ },
        'size'      => sub { s/^12$/11/m },
        'signature' => sub {
            s/(log1 .{20})(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e
        },
        'origin'    => sub { s/^foxgov-ledger\/acme$/foxgov-ledger\/acmf/m },
    );
    for my $what (sort keys %edits) {
        my $d = cps_with("tampered-$what", sub {
            my $p = "$_[0]/" . cpname(12);
            local $_ = slurp($p);
            $edits{$what}->();
            spew($p, $_);
        });
        my ($rc, $out, $err) = verify($ledger, $d, $jwks);
        is($rc, 1, "a checkpoint whose $what was changed: refused");
        like($err, qr/^foxgov verify: \S+: checkpoint at seq 1[12] \(\S+\/00000000000000000012\.checkpoint\): the signature by key log1 does not verify$/,
             'naming its seq and file') or diag($err);
    }

    my $d = cps_with('garbled', sub {
        spew("$_[0]/" . cpname(12), "foxgov-ledger/acme\n12\n!!\n\n");
    });
    my ($rc, undef, $err) = verify($ledger, $d, $jwks);
    is($rc, 1, 'a checkpoint that does not read: refused');
    like($err, qr/^foxgov verify: \S+: checkpoint \S+00000000000000000012\.checkpoint: the third line is not the base64 of a 32-byte hash$/,
         'with why') or diag($err);

    $d = cps_with('extension', sub {
        my $p = "$_[0]/" . cpname(12);
        (my $t = slurp($p)) =~ s/=\n\n/=\nmore\n\n/;
        spew($p, $t);
    });
    ($rc, undef, $err) = verify($ledger, $d, $jwks);
    is($rc, 1, 'an extension line: refused');
    like($err, qr/extension lines are not accepted/, 'with why');

    $d = cps_with('huge', sub {
        spew("$_[0]/" . cpname(12), slurp("$cps/" . cpname(12))
             . ("$DASH w " . ('A' x 4000) . "\n"));
    });
    ($rc, undef, $err) = verify($ledger, $d, $jwks);
    is($rc, 1, 'a checkpoint file over 4 KiB: refused');
    like($err, qr/longer than 4096 bytes/, 'with why');

    $d = cps_with('renamed', sub {
        rename("$_[0]/" . cpname(12), "$_[0]/" . cpname(13));
    });
    ($rc, undef, $err) = verify($ledger, $d, $jwks);
    is($rc, 1, 'a checkpoint under another seq\'s name: refused');
    like($err, qr/checkpoint at seq 12 \(\S+00000000000000000013\.checkpoint\): its file should be named 00000000000000000012\.checkpoint/,
         'with why') or diag($err);

    # a witness's signature line added: ignored, the log's still verifies
    $d = cps_with('cosigned', sub {
        my $p = "$_[0]/" . cpname(12);
        my ($rc2, $n2) = run_foxgov('checkpoint', $ledger, '--key', $pem2);
        my ($line) = $n2 =~ /\n\n(.*)\z/s;
        spew($p, slurp($p) . $line);
    });
    my $out;
    ($rc, $out, $err) = verify($ledger, $d, $jwks);
    is($rc, 0, 'another signer\'s line beside the trusted one: verifies')
        or diag($err);
    unlink "$d/" . cpname(6);
    ($rc, $out, $err) = verify($ledger, $d, $jwks2);
    is($rc, 0, 'and either key may be the trusted one') or diag($err);
}

# keys
{
    my ($rc, undef, $err) = verify($ledger, $cps, $jwks2);
    is($rc, 1, 'checkpoints signed by an untrusted key: refused');
    like($err, qr/^foxgov verify: \S+: checkpoint at seq (6|12) \(\S+\): no signature by a trusted key \(signed by log1\)$/,
         'naming the seq and the signer') or diag($err);

    ($rc, undef, $err) = verify($ledger, $cps, $jwks_twin);
    is($rc, 1, 'a trusted key named log1 but another key: refused');
    like($err, qr/no signature by a trusted key/, 'the key id tells them apart')
        or diag($err);

    my $es_jwks = "$dir/keys-es/es1.jwks.json";
    ($rc, undef, $err) = verify($ledger, $cps, $es_jwks);
    is($rc, 2, 'trusted keys without an Ed25519 key: usage');

    ($rc, undef, $err) = run_foxgov('verify', $ledger, '--checkpoints', $cps);
    is($rc, 2, '--checkpoints without --trusted-key: usage');
    ($rc, undef, $err) = run_foxgov('verify', $ledger, '--trusted-key', $jwks);
    is($rc, 2, '--trusted-key without --checkpoints: usage');
    ($rc, undef, $err) = verify($ledger, "$dir/nonexistent", $jwks);
    is($rc, 2, 'no such checkpoint directory: usage');
}

# a checkpoint of another tenant
{
    my $auth = record_data($records[0]);
    $auth->{tenant_id} = 'beta';
    my $beta = write_ledger("$dir/beta.ledger", 'beta', canon_record($auth));
    my ($rc, undef, $err) = run_foxgov('checkpoint', $beta, '--key', $pem,
                                       '-o', "$dir/beta-cps");
    is($rc, 2, 'no such output directory: usage');
    make_path("$dir/beta-cps");
    ($rc, undef, $err) = run_foxgov('checkpoint', $beta, '--key', $pem,
                                    '-o', "$dir/beta-cps");
    is($rc, 0, 'beta\'s ledger checkpointed') or diag($err);

    my $d = cps_with('with-beta', sub {
        copy("$dir/beta-cps/" . cpname(1), "$_[0]/" . cpname(1));
    });
    for my $t ([], ['--tenant', 'acme']) {
        ($rc, undef, $err) = verify($ledger, $d, $jwks, @$t);
        is($rc, 1, "a checkpoint of another tenant among acme's: refused "
                   . "(@$t)");
        like($err, qr/^foxgov verify: \S+: checkpoint at seq 1 \(\S+00000000000000000001\.checkpoint\): of tenant beta, not of this ledger's tenant acme$/,
             'naming it') or diag($err);
    }

    # acme's checkpoints do not vouch for beta's ledger either
    ($rc, undef, $err) = verify($beta, $cps, $jwks);
    is($rc, 1, 'acme\'s checkpoints against beta\'s ledger: refused');
    like($err, qr/of tenant acme, not of this ledger's tenant beta/, 'named');
}

done_testing();
