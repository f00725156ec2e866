#!/usr/bin/perl

# foxgov-ledgerd with the file backend and a real Redis: records in the
# tenant streams end in a ledger that foxgov verify accepts, each exactly
# once; every kind of bad entry goes to foxgov:dlq with its reason, once;
# a record delivered again is not appended again; a second daemon on the
# same directory refuses to start; a torn last line is cut at start; a
# damaged ledger is refused; SIGTERM ends it cleanly; and the streams are
# trimmed only below what the group still holds.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Evidence qw(flows feed);
use FoxGov::Test::Fixtures qw(foxgov_bin run_foxgov);
use FoxGov::Test::Ledgerd;
use FoxGov::Test::Redis;

plan skip_all => 'foxgov-ledgerd not built'
    unless -x FoxGov::Test::Ledgerd::bin();
plan skip_all => 'CLI not built' unless -x foxgov_bin();
plan skip_all => 'no redis-server' unless grep { -x "$_/redis-server" }
    split /:/, $ENV{PATH};

my $dir = tempdir("foxgov-ledgerd-XXXXXXXX", TMPDIR => 1, CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
my $redis = FoxGov::Test::Redis->new;
$redis->start;
my $r = $redis->client;

sub daemon {
    my ($name, @args) = @_;
    return FoxGov::Test::Ledgerd->new(redis => $redis,
        ledger => "file:$dir/$name", log => "$dir/$name.log",
        args => [ '--consumer', $name, @args ]);
}

# The envelope hashes of a ledger file, in order.
sub ledger_hashes {
    my ($path) = @_;
    open my $fh, '<', $path or return ();
    my @h;
    while (my $l = <$fh>) {
        push @h, $1 if $l =~ /^\{"chain":"[0-9a-f]{64}","envelope_hash":"([0-9a-f]{64})"/;
    }
    return @h;
}

sub dlq {
    my @out;
    for my $e ($r->xrange('foxgov:dlq', '-', '+')) {
        my ($id, $f) = @$e;
        push @out, { @$f };
    }
    return @out;
}

sub xlen { my $n = $r->xlen($_[0]); return $n }

# ------------------------------------------------------------ end to end

my @acme = flows('acme', 40, salt => 'e2e');
my @beta = flows('beta', 25, salt => 'e2e');
feed($redis, 'acme', @acme);
feed($redis, 'beta', @beta);

{
    my $d = daemon('e2e');
    is($d->run_once, 0, '--once drains the streams and exits 0');

    for my $t ([acme => \@acme], [beta => \@beta]) {
        my ($tenant, $recs) = @$t;
        my $ledger = "$dir/e2e/$tenant/ledger.jsonl";
        my ($rc, $out, $err) = run_foxgov('verify', $ledger);
        is($rc, 0, "$tenant: the ledger verifies") or diag($err);
        my $n = scalar @$recs;
        like($out, qr/verified: tenant $tenant, $n records/,
             "$tenant: every record, once");
        is_deeply([ ledger_hashes($ledger) ], [ map { $_->[1] } @$recs ],
                  "$tenant: in stream order");
        is(xlen("foxgov:ev:{$tenant}"), 0,
           "$tenant: the acknowledged entries are trimmed");
    }
    is(scalar(dlq()), 0, 'nothing dead-lettered');
    like($d->log_text, qr/stopping: 195 appended, 0 duplicates, 0 dead/,
         'the daemon says what it did');

    # the same records again (a gateway that resent them): deduped
    feed($redis, 'acme', @acme[0 .. 29]);
    is($d->run_once, 0, 'a second run');
    my @h = ledger_hashes("$dir/e2e/acme/ledger.jsonl");
    is(scalar @h, scalar @acme, 'records delivered again are not appended '
                                . 'again');
    like($d->log_text, qr/stopping: 0 appended, 30 duplicates/,
         'they are counted as duplicates');

    # the tenant directory and file: only the daemon's, 0700 and 0600
    is((stat "$dir/e2e/acme")[2] & 07777, 0700, 'tenant directory 0700');
    is((stat "$dir/e2e/acme/ledger.jsonl")[2] & 07777, 0600,
       'ledger file 0600');
}

# ------------------------------------------------------------------ DLQ

{
    my @good = flows('acme', 3, salt => 'dlq');
    my ($ac, $pd, $mc) = map { $_->[2] } @good[0 .. 2];

    my $rehash = sub { my ($t, $rec) = @_; [$t, sha256_hex($rec), $rec] };

    (my $extra = $ac) =~ s/\}\z/,"zzz":1}/;
    (my $notrace = $pd) =~ s/,"trace":\{[^}]*\}// or die 'no trace';
    (my $orphan = $mc) =~ s/("policy_decision_sha256":")[0-9a-f]{64}/$1 . ('ab' x 32)/e;
    (my $spaced = $ac) =~ s/^\{/{ /;
    (my $other = $ac) =~ s/"tenant_id":"acme"/"tenant_id":"other"/g;
    (my $fresh = $ac) =~ s/"jti":"[^"]*"/"jti":"00000000-0000-4000-8000-000000000000"/;

    my %bad = (
        hash_mismatch    => ['AuthContext', 'cd' x 32, $fresh],
        schema_violation => $rehash->('AuthContext', $extra),
        missing_trace    => $rehash->('PolicyDecisionRecord', $notrace),
        orphan           => $rehash->('ModelCallRecord', $orphan),
        type_mismatch    => ['ModelCallRecord', sha256_hex($fresh), $fresh],
        malformed        => ['AuthContext', sha256_hex($ac), $spaced],
        tenant_mismatch  => $rehash->('AuthContext', $other),
    );
    my %want = map { $bad{$_}[1] => $_ } keys %bad;
    $want{ sha256_hex('not json') } = 'malformed';

    feed($redis, 'acme', @good[0 .. 2], (map { $bad{$_} } sort keys %bad),
         ['AuthContext', sha256_hex('not json'), 'not json']);

    my $d = daemon('dlq', '--orphan-grace', '0ms');
    is($d->run_once, 0, 'a run with bad entries');

    my @dead = dlq();
    is(scalar @dead, scalar keys %want, 'each bad entry dead-lettered once');
    for my $e (@dead) {
        my $reason = $want{ $e->{h} // '' } // '?';
        is($e->{reason}, $reason, "$reason: with its reason")
            or diag(explain $e);
        ok(length $e->{detail} && $e->{stream} eq 'foxgov:ev:{acme}'
           && $e->{id} =~ /^\d+-\d+$/ && defined $e->{r},
           "$reason: with the detail, the stream, the id and the entry");
    }

    my ($rc, $out, $err) = run_foxgov('verify', "$dir/dlq/acme/ledger.jsonl");
    is($rc, 0, 'the good records around them are in a verified ledger')
        or diag($err);
    like($out, qr/3 records/, 'all of them');
    is(xlen('foxgov:ev:{acme}'), 0, 'bad entries are acknowledged too');
    like($d->log_text, qr/to foxgov:dlq: orphan: its policy_decision_sha256/,
         'the log says where each went and why');
    $r->del('foxgov:dlq');
}

# --------------------------------------------- orphans wait for a parent

{
    my @f = flows('acme', 1, salt => 'late');
    feed($redis, 'acme', $f[2]);            # the call record first
    my $d = daemon('late', '--orphan-grace', '20s', '--block', '100ms');
    $d->start;
    sleep 1;
    my $p = ($r->xpending('foxgov:ev:{acme}', 'foxgov-ledger'))[0];
    is($p, 1, 'a call record without its decision is left pending');
    is(xlen('foxgov:ev:{acme}'), 1, 'and not trimmed');
    feed($redis, 'acme', @f[0, 1]);         # its parents arrive
    my $deadline = time() + 15;
    sleep 0.1 while ledger_hashes("$dir/late/acme/ledger.jsonl") < 3
                    && time() < $deadline;
    is(scalar(ledger_hashes("$dir/late/acme/ledger.jsonl")), 3,
       'it is appended once they are in');
    is($d->stop, 0, 'SIGTERM: it stops cleanly');
    like($d->log_text, qr/stopping: 3 appended/, 'after its batch');
    my ($rc, undef, $err) = run_foxgov('verify',
                                       "$dir/late/acme/ledger.jsonl");
    is($rc, 0, 'the ledger verifies') or diag($err);
    is(scalar(dlq()), 0, 'nothing dead-lettered');
}

# ---------------------------------------------------------- checkpoints

{
    my ($rc, undef, $err) = run_foxgov('keygen', '--kid', 'ckpt', '--out',
                                       $dir);
    is($rc, 0, 'an Ed25519 checkpoint key') or diag($err);

    feed($redis, 'acme', flows('acme', 100, salt => 'ckpt'));
    my $d = daemon('ckpt', '--checkpoint-key', "$dir/ckpt.pem",
                   '--checkpoint-every', '50', '--checkpoint-every', '1h',
                   '--batch', '40');
    is($d->run_once, 0, 'a run signing checkpoints');

    my @cp = sort glob "$dir/ckpt/acme/checkpoints/*.checkpoint";
    ok(@cp >= 4, scalar(@cp) . ' checkpoints, one at least every 50 '
                 . 'entries');
    like($cp[-1], qr{/0{17}300\.checkpoint$}, 'the last one at the head');
    my $note = do { local (@ARGV, $/) = $cp[-1]; <> };
    like($note, qr{^foxgov-ledger/acme\n300\n[A-Za-z0-9+/]{43}=\n\n\x{e2}\x{80}\x{94} ckpt [A-Za-z0-9+/=]+\n\z},
         'a C2SP signed note: origin, size, hash, the key\'s signature');

    my $ledger = "$dir/ckpt/acme/ledger.jsonl";
    my @v = ('verify', $ledger, '--checkpoints', "$dir/ckpt/acme/checkpoints",
             '--trusted-key', "$dir/ckpt.jwks.json");
    my ($rc2, $out, $err2) = run_foxgov(@v);
    is($rc2, 0, 'foxgov verify checks the ledger against them') or diag($err2);
    like($out, qr/checkpoints verified \(latest seq 300\)/, 'all of them');

    # the tail cut below the last checkpoint: refused
    open my $fh, '<:raw', $ledger or die;
    my @l = <$fh>;
    close $fh;
    open $fh, '>:raw', $ledger or die;
    print $fh @l[0 .. 289];
    close $fh;
    my ($rc3, undef, $err3) = run_foxgov(@v);
    is($rc3, 1, 'a ledger cut below its checkpoint is refused');
    like($err3, qr/seq 290.*300|300.*290/, 'naming where it ends and the '
                                           . 'checkpoint');
}

# ------------------------------------------------ one daemon a directory

{
    my $a = daemon('lock', '--block', '100ms');
    $a->start;
    sleep 0.5;
    my $b = FoxGov::Test::Ledgerd->new(redis => $redis,
        ledger => "file:$dir/lock", log => "$dir/lock2.log",
        args => [ '--consumer', 'second' ]);
    is($b->run_once, 1, 'a second daemon on the same directory exits 1');
    like($b->log_text, qr/held by another foxgov-ledgerd/, 'saying why');
    is($a->stop, 0, 'the first one stops cleanly');
}

# ------------------------------------------------------ torn and damaged

{
    my @f = flows('acme', 4, salt => 'torn');
    feed($redis, 'acme', @f[0 .. 5]);
    my $d = daemon('torn');
    is($d->run_once, 0, 'a ledger of six');
    my $ledger = "$dir/torn/acme/ledger.jsonl";

    open my $fh, '>>:raw', $ledger or die;
    print $fh '{"chain":"0123';               # a crash in an append
    close $fh;

    feed($redis, 'acme', @f[6 .. 11]);
    is($d->run_once, 0, 'a run on a ledger with a torn last line');
    like($d->log_text, qr/torn last entry after seq 6 .*cut off/,
         'the torn line is cut and logged');
    my ($rc, $out, $err) = run_foxgov('verify', $ledger);
    is($rc, 0, 'the ledger verifies after it') or diag($err);
    like($out, qr/12 records/, 'with the new records after the cut');

    # a whole line changed: damage, not a tear
    open $fh, '<:raw', $ledger or die;
    my @l = <$fh>;
    close $fh;
    $l[3] =~ s/"status":200/"status":201/ or $l[3] =~ s/"seq":4/"seq":5/;
    open $fh, '>:raw', $ledger or die;
    print $fh @l;
    close $fh;
    my $size = -s $ledger;

    feed($redis, 'acme', flows('acme', 1, salt => 'after-damage'));
    feed($redis, 'gamma', flows('gamma', 2, salt => 'beside-damage'));
    my $d2 = daemon('torn');
    is($d2->run_once, 1, 'a damaged ledger: --once does not finish, exit 1');
    like($d2->log_text, qr/ledger of acme damaged at seq 4/,
         'naming the tenant and the seq');
    is(-s $ledger, $size, 'nothing is cut or appended');
    ok(xlen('foxgov:ev:{acme}') >= 3, 'its entries stay in the stream');
    is(($r->xpending('foxgov:ev:{acme}', 'foxgov-ledger'))[0], 3,
       'pending, for when it is repaired');
    my ($rc4, $out4) = run_foxgov('verify', "$dir/torn/gamma/ledger.jsonl");
    like($out4, qr/verified: tenant gamma, 6 records/,
         'another tenant goes on beside it');
    $r->del('foxgov:ev:{acme}', 'foxgov:ev:{gamma}');
}

# ----------------------------------------------- bad options, bad tenant

{
    my $out = `${\ FoxGov::Test::Ledgerd::bin()} --ledger file:$dir/x --batch 0 2>&1`;
    is($? >> 8, 2, 'a bad option: exit 2');
    like($out, qr/^foxgov-ledgerd: --batch "0" is not 1\.\.100000$/m,
         'one line saying what is wrong');

    $r->xadd('foxgov:ev:{../etc}', '*', 't', 'AuthContext', 'h', 'x',
             'r', '{}');
    $r->xadd('foxgov:ev:{Acme}', '*', 't', 'AuthContext', 'h', 'x',
             'r', '{}');
    my $d = daemon('paths');
    is($d->run_once, 0, 'streams of no valid tenant are left alone');
    like($d->log_text, qr/stream "foxgov:ev:\{\.\.\/etc\}" skipped/,
         'and named in the log');
    ok(!-e "$dir/etc" && !-e "$dir/paths/../etc" && !-e "$dir/paths/Acme",
       'no path is made of them');
    is(xlen('foxgov:ev:{../etc}'), 1, 'their entries are not touched');
}

# ---------------------------------------------------------- config file

{
    feed($redis, 'acme', flows('acme', 2, salt => 'config'));
    open my $fh, '>', "$dir/ledgerd.conf" or die;
    print $fh "# foxgov-ledgerd\nredis ${\ $redis->addr}\n"
            . "ledger file:$dir/conf\n  batch   7  \nconsumer from-file\n"
            . "once\nlog-level debug\n";
    close $fh;
    my $out = `${\ FoxGov::Test::Ledgerd::bin()} --config $dir/ledgerd.conf 2>&1`;
    is($? >> 8, 0, 'options from a config file') or diag($out);
    like($out, qr/consumer from-file, --once/, 'all of them');
    my ($rc, $vout) = run_foxgov('verify', "$dir/conf/acme/ledger.jsonl");
    like($vout, qr/6 records/, 'the records appended');

    open $fh, '>', "$dir/bad.conf" or die;
    print $fh "ledger file:$dir/x\nbatch many\n";
    close $fh;
    $out = `${\ FoxGov::Test::Ledgerd::bin()} --config $dir/bad.conf 2>&1`;
    is($? >> 8, 2, 'a bad config file: exit 2');
    like($out, qr/--batch "many" is not 1\.\.100000\n.*bad\.conf:2/s,
         'naming the option, the file and the line');
}

$redis->stop;
done_testing();
