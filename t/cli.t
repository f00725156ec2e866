#!/usr/bin/perl
# The foxgov CLI's canon, hash and validate commands: outputs, exit
# statuses, one-line refusals naming the offset, and the golden vectors.

use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname basename);
use File::Spec;
use File::Temp qw(tempdir);
use IPC::Open3;
use Symbol qw(gensym);
use Digest::SHA qw(sha256_hex);

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $foxgov = $ENV{FOXGOV_CLI} // "$top/build/bin/foxgov";

plan skip_all => "$foxgov is not built" unless -x $foxgov;

# run(stdin, args...) -> (exit status, stdout, stderr)
sub run {
    my ($stdin, @args) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $foxgov, @args);
    binmode $_ for $in, $out, $err;
    # a command refused for its arguments exits without reading stdin:
    # writing to it then is EPIPE, which is not the test's failure
    local $SIG{PIPE} = 'IGNORE';
    print $in $stdin if defined $stdin;
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# ------------------------------------------------------------- canon/hash

for my $json (glob "$top/vectors/jcs/valid/*.json") {
    (my $canon = $json) =~ s/\.json$/.canon/;
    my $name = basename($json, '.json');
    my ($rc, $out, $err) = run(undef, 'canon', $json);
    is($rc, 0, "canon $name exits 0");
    is($out, slurp($canon), "canon $name matches the vector, no newline");
    is($err, '', "canon $name says nothing on stderr");

    ($rc, $out) = run(undef, 'hash', $json);
    is($out, sha256_hex(slurp($canon)) . "\n", "hash $name is sha256(canon)");
}

for my $json (glob "$top/vectors/jcs/invalid/*.json") {
    (my $errfile = $json) =~ s/\.json$/.err/;
    my $name = basename($json, '.json');
    my $want = slurp($errfile);
    chomp $want;
    for my $cmd (qw(canon hash)) {
        my ($rc, $out, $err) = run(undef, $cmd, $json);
        is($rc, 1, "$cmd $name exits 1");
        is($out, '', "$cmd $name writes nothing to stdout");
        is($err, "foxgov $cmd: $json: $want\n",
           "$cmd $name: one line naming the problem and the offset");
    }
}

{
    my ($rc, $out) = run('{"b":1, "a":[1.0, 1e21]}', 'canon', '-');
    is($out, '{"a":[1,1e+21],"b":1}', 'canon reads stdin with -');
    ($rc, $out) = run('{"b":1, "a":2}', 'canon');
    is($out, '{"a":2,"b":1}', 'canon reads stdin by default');

    ($rc, $out) = run("not json at all\n", 'hash', '--raw');
    is($out, sha256_hex("not json at all\n") . "\n",
       'hash --raw hashes the bytes as they are');
    ($rc, $out) = run('{"a": 1}', 'hash');
    is($out, sha256_hex('{"a":1}') . "\n", 'hash hashes the canonical form');

    my $err;
    ($rc, $out, $err) = run('{"a":1,"a":2}', 'hash');
    is($rc, 1, 'hash refuses duplicate keys');
    is($err, "foxgov hash: <stdin>: duplicate object key \"a\" at byte 7\n",
       'stdin is named <stdin>');

    ($rc, $out, $err) = run(undef, 'canon', '/nonexistent/x.json');
    is($rc, 2, 'canon of a missing file exits 2');
    like($err, qr{^foxgov canon: /nonexistent/x\.json: No such file}m,
         'and says why');

    ($rc, $out, $err) = run(undef, 'canon', '--bogus');
    is($rc, 2, 'unknown option exits 2');
    ($rc, $out, $err) = run(undef, 'canon', 'a', 'b');
    is($rc, 2, 'two inputs exit 2');
    ($rc, $out, $err) = run(undef, 'frobnicate');
    is($rc, 2, 'unknown command exits 2');
    like($err, qr/unknown command "frobnicate"/, 'and names it');
    ($rc, $out, $err) = run(undef);
    is($rc, 2, 'no command exits 2');

    for my $cmd (qw(canon hash validate)) {
        ($rc, $out) = run(undef, $cmd, '--help');
        is($rc, 0, "$cmd --help exits 0");
        like($out, qr/^usage: foxgov $cmd/, "$cmd --help prints its usage");
    }
    ($rc, $out) = run(undef, '--help');
    like($out, qr/canon.*hash.*validate/s, 'foxgov --help lists commands');

    # a large document streams through the sink's flushes
    my $big = '{"messages":[' . join(',', map {
        qq({"role":"user","content":"message $_ \\u00e9\\n"})
    } 1 .. 5000) . ']}';
    ($rc, $out) = run($big, 'hash');
    (my $canon = $big) =~ s/\\u00e9/\x{c3}\x{a9}/g;
    $canon =~ s/\{"role":"user",("content":"[^"]*")\}/{$1,"role":"user"}/g;
    is($out, sha256_hex($canon) . "\n", 'hash of a 300 KB document');
}

# ---------------------------------------------------------------- records

my @types = qw(AuthContext PolicyDecisionRecord ModelCallRecord ToolCallRecord);
my $valid = 0;

for my $type (@types) {
    for my $json (glob "$top/vectors/records/$type/valid-*.json") {
        my $name = "$type/" . basename($json, '.json');
        my ($rc, $out, $err) = run(undef, 'validate', $type, $json);
        is($rc, 0, "validate $name exits 0");
        is($out . $err, '', "validate $name prints nothing");

        ($rc, $out, $err) = run(undef, 'validate', 'record', $json);
        is($rc, 0, "validate record $name (type from record_type)");

        (my $canon = $json) =~ s/\.json$/.canon/;
        (my $hash = $json) =~ s/\.json$/.sha256/;
        ($rc, $out) = run(undef, 'canon', $json);
        is($out, slurp($canon), "canon $name matches its vector");
        ($rc, $out) = run(undef, 'hash', $json);
        is($out, slurp($hash), "envelope_hash of $name matches its vector");
        is(sha256_hex(slurp($canon)) . "\n", slurp($hash),
           "$name: the vector's hash is sha256 of its canonical bytes");
        $valid++;
    }

    for my $json (glob "$top/vectors/records/$type/invalid-*.json") {
        my $name = "$type/" . basename($json, '.json');
        (my $errfile = $json) =~ s/\.json$/.err/;
        my ($rc, $out, $err) = run(undef, 'validate', $type, $json);
        is($rc, 1, "validate $name exits 1");
        my ($first) = split /\n/, $err;
        my $want = slurp($errfile);
        chomp $want;
        is($first, $want, "validate $name: first error is the expected one");
    }
}

ok($valid >= 8, "at least two valid records per type ($valid)");

{
    my $rec = slurp((glob "$top/vectors/records/AuthContext/valid-*.json")[0]);
    my ($rc, $out, $err) = run($rec, 'validate', 'ToolCallRecord');
    is($rc, 1, 'an AuthContext is not a ToolCallRecord');
    ($rc, $out, $err) = run($rec, 'validate', 'NoSuchType');
    is($rc, 2, 'unknown record type exits 2');
    like($err, qr/unknown record type "NoSuchType"/, 'and names it');

    (my $dup = $rec) =~ s/\{/{"tenant_id":"x",/;
    ($rc, $out, $err) = run($dup, 'validate', 'AuthContext');
    is($rc, 1, 'a record with a duplicate key is refused');
    like($err, qr/^foxgov validate: <stdin>: duplicate object key "tenant_id" at byte \d+\n\z/,
         'before schema validation, with the offset');

    ($rc, $out, $err) = run('{"record_type":"AuthContext"', 'validate',
                            'AuthContext');
    is($rc, 1, 'truncated record refused');
    like($err, qr/end of input in object at byte 28/, 'with the offset');
}

done_testing();
