#!/usr/bin/perl
# The policy side of the CLI: keygen, token mint, approve, bundle
# build/sign/verify/test and decide, with real keys and signatures made
# here; the .signatures.json shape OPA documents; refusals naming the file.

use strict;
use warnings;
use Test::More;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Open3;
use Symbol qw(gensym);
use MIME::Base64 qw(decode_base64);
use JSON::PP;
use Digest::SHA qw(sha256_hex);

my $top = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $foxgov = $ENV{FOXGOV_CLI} // "$top/build/bin/foxgov";
plan skip_all => "$foxgov is not built" unless -x $foxgov;

my $dir = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical;

sub run {
    my (@args) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $foxgov, @args);
    close $in;
    local $/;
    my $o = <$out> // '';
    my $e = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $o, $e);
}

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }
sub spew { open my $f, '>:raw', $_[0] or die "$_[0]: $!"; print $f $_[1]; close $f }

sub b64url_json {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return $json->decode(decode_base64($s));
}

# ---------------------------------------------------------------- keygen
my ($rc, $out, $err);
for my $alg (qw(EdDSA ES256 RS256)) {
    ($rc, $out) = run('keygen', '--kid', "k-$alg", '--alg', $alg,
                      '--out', $dir);
    is($rc, 0, "keygen $alg");
    ok(-f "$dir/k-$alg.pem" && -f "$dir/k-$alg.jwks.json", "$alg files");
    is((stat "$dir/k-$alg.pem")[2] & 0777, 0600, "$alg private key is 0600");
    my $jwks = $json->decode(slurp("$dir/k-$alg.jwks.json"));
    is($jwks->{keys}[0]{kid}, "k-$alg", "$alg JWKS names the kid");
    ok(!exists $jwks->{keys}[0]{d}, "$alg JWKS holds no private member");
}
($rc, $out, $err) = run('keygen', '--kid', 'k-EdDSA', '--out', $dir);
is($rc, 2, 'keygen never overwrites');
($rc, $out, $err) = run('keygen', '--kid', 'x', '--alg', 'HS256');
is($rc, 2, 'keygen refuses HS256');
($rc, $out, $err) = run('keygen', '--kid', '../evil', '--out', $dir);
is($rc, 2, 'keygen refuses a kid that is a path');

# ------------------------------------------------------------ token mint
($rc, $out, $err) = run('token', 'mint', '--key', "$dir/k-EdDSA.pem",
    '--tenant', 'acme', '--sub', 'svc-triage', '--cap', 'model:gpt-4o*',
    '--cap', 'tool:servicenow.incident:write', '--ttl', '15m',
    '--environment', 'prod', '--workspace', 'itsm');
is($rc, 0, 'token mint');
chomp $out;
my @parts = split /\./, $out;
is(scalar @parts, 3, 'a compact JWS');
my $hdr = b64url_json($parts[0]);
my $cl = b64url_json($parts[1]);
is_deeply($hdr, {alg => 'EdDSA', kid => 'k-EdDSA', typ => 'JWT'},
          'header names alg and the key file as kid');
is($cl->{tenant_id}, 'acme', 'tenant_id claim');
is_deeply($cl->{capabilities},
          ['model:gpt-4o*', 'tool:servicenow.incident:write'], 'capabilities');
is($cl->{exp} - $cl->{iat}, 900, 'ttl 15m');
like($cl->{jti}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'jti is a UUIDv7');
for my $bad ('../etc', 'ACME', '', 'a' x 64, "acme\n") {
    ($rc, $out, $err) = run('token', 'mint', '--key', "$dir/k-EdDSA.pem",
                            '--tenant', $bad, '--sub', 'x');
    is($rc, 2, "tenant \"\Q$bad\E\" refused");
}
($rc, $out, $err) = run('token', 'mint', '--key', "$dir/k-EdDSA.jwks.json",
                        '--tenant', 'acme', '--sub', 'x');
is($rc, 2, 'a public key cannot mint');
like($err, qr/no private key/, 'and says so');

# --------------------------------------------------------------- approve
my $req = { approval_request_id => 'apr-1', tenant_id => 'acme',
            tool => 'servicenow.incident', action => 'write',
            input_sha256 => sha256_hex('{"priority":2}'),
            expires_at => '2026-11-22T10:15:00Z' };
spew("$dir/req.json", $json->encode($req));
($rc, $out, $err) = run('approve', '--key', "$dir/k-ES256.pem",
                        '--request', "$dir/req.json", '--approver', 'lead');
is($rc, 0, 'approve');
@parts = split /\./, $out;
$hdr = b64url_json($parts[0]);
$cl = b64url_json($parts[1]);
is($hdr->{typ}, 'foxgov-approval+jwt', 'approval typ');
is($cl->{$_}, $req->{$_}, "approval bound to $_")
    for qw(tenant_id tool action input_sha256 approval_request_id);
is($cl->{sub}, 'lead', 'approver');
ok($cl->{jti}, 'single-use jti');
$req->{input_sha256} = 'ABC';
spew("$dir/bad-req.json", $json->encode($req));
($rc, $out, $err) = run('approve', '--key', "$dir/k-ES256.pem",
                        '--request', "$dir/bad-req.json");
is($rc, 1, 'approve refuses a request without a proper input hash');

# ---------------------------------------------------------------- bundles
my $src = "$top/conf/bundles/itsm-triage";
my $b = "$dir/itsm.tar.gz";
for my $alg (qw(EdDSA ES256 RS256)) {
    my $bb = "$dir/itsm-$alg.tar.gz";
    ($rc, $out, $err) = run('bundle', 'build', $src, '-o', $bb, '--key',
                            "$dir/k-$alg.pem");
    is($rc, 0, "bundle build signed with $alg") or diag($err);
    ($rc, $out, $err) = run('bundle', 'verify', $bb, '--keys',
                            "$dir/k-$alg.jwks.json");
    is($rc, 0, "bundle verify $alg") or diag($err);
    like($out, qr/^ok: .* revision=itsm-triage-\S+ sha256=[0-9a-f]{64} kid=k-$alg /,
         "verify prints revision, digest and kid");
}
copy("$dir/itsm-EdDSA.tar.gz", $b);

# EdDSA signing is deterministic, so the archive is too
($rc) = run('bundle', 'sign', $b, '--key', "$dir/k-EdDSA.pem", '-o',
            "$dir/again.tar.gz");
is(slurp("$dir/again.tar.gz"), slurp($b), 'build+sign is reproducible');

# the .signatures.json OPA documents
my $ex = "$dir/extract";
make_path($ex);
system('tar', 'xzf', $b, '-C', $ex) == 0 or die 'tar';
my $sigs = $json->decode(slurp("$ex/.signatures.json"));
is_deeply([sort keys %$sigs], ['signatures'], 'only "signatures"');
is(ref $sigs->{signatures}, 'ARRAY', 'an array');
is(scalar @{$sigs->{signatures}}, 1, 'of one JWT');
@parts = split /\./, $sigs->{signatures}[0];
$hdr = b64url_json($parts[0]);
ok($hdr->{alg} && $hdr->{kid}, 'header has alg and kid');
my $files = b64url_json($parts[1])->{files};
my @names = sort map { $_->{name} } @$files;
my @present = sort grep { $_ ne '.signatures.json' }
              map { s{^\Q$ex\E/}{}r } grep { -f } glob("$ex/* $ex/.manifest $ex/tests/*");
is_deeply(\@names, \@present, 'files lists exactly the bundle files');
for my $f (@$files) {
    is_deeply([sort keys %$f], [qw(algorithm hash name)],
              "$f->{name}: name, hash, algorithm");
    is($f->{algorithm}, 'SHA-256', "$f->{name}: SHA-256");
    is($f->{hash}, sha256_hex(slurp("$ex/$f->{name}")),
       "$f->{name}: hash of its bytes");
}

# refusals, each naming the file
($rc, $out, $err) = run('bundle', 'verify', $b, '--keys',
                        "$dir/k-ES256.jwks.json");
is($rc, 1, 'verify with the wrong keys fails');
like($err, qr/\.signatures\.json: signature not valid/, 'names the signature');

my $tamper = "$dir/tampered";
make_path("$tamper/tests");
copy("$ex/$_", "$tamper/$_") for ('.manifest', 'policy.json', 'prices.json',
                                  '.signatures.json', 'tests/triage.json');
spew("$tamper/policy.json", slurp("$tamper/policy.json") =~ s/REQUIRE_HITL/ALLOW/r);
($rc, $out, $err) = run('bundle', 'verify', $tamper, '--keys',
                        "$dir/k-EdDSA.jwks.json");
is($rc, 1, 'a tampered policy.json is refused');
like($err, qr/policy\.json/, 'naming policy.json');

unlink "$tamper/.signatures.json";
($rc, $out, $err) = run('bundle', 'verify', $tamper, '--keys',
                        "$dir/k-EdDSA.jwks.json");
is($rc, 1, 'an unsigned bundle is refused');

spew("$tamper/policy.json", '{"rules":[{"id":"x","match":{"modle":"a"},"decision":"ALLOW"}]}');
($rc, $out, $err) = run('bundle', 'build', $tamper, '-o', "$dir/no.tar.gz");
is($rc, 1, 'build refuses a policy that does not compile');
like($err, qr/policy\.json: rules\[0\] \(x\)/, 'naming the rule');

# bundle test
($rc, $out, $err) = run('bundle', 'test', $b, '--keys', "$dir/k-EdDSA.jwks.json");
is($rc, 0, 'the example bundle passes its own tests') or diag($out);
like($out, qr/^15 passed, 0 failed/m, 'all 15 cases');

my $failing = "$dir/failing";
make_path("$failing/tests");
copy("$src/$_", "$failing/$_") for ('.manifest', 'policy.json');
spew("$failing/tests/t.json", $json->encode({cases => [
    { name => 'wrong on purpose', now => '2026-11-22T00:00:00Z',
      input => { kind => 'tool', tool => 'servicenow.incident', action => 'read' },
      expect => { decision => 'DENY' } }]}));
($rc, $out, $err) = run('bundle', 'test', $failing);
is($rc, 1, 'a failing case fails the run');
like($out, qr/^FAIL tests\/t\.json: wrong on purpose: expected DENY, got ALLOW/m,
     'and says what it got');

# ----------------------------------------------------------------- decide
my $input = {
    kind => 'tool', tenant_id => 'acme', workspace_id => 'itsm',
    environment => 'prod', principal => 'svc-triage', acr => undef,
    capabilities => ['tool:servicenow.incident:write'], provider => undef,
    model => undef, tool => 'servicenow.incident', action => 'write',
    risk => 'high', method => 'PATCH', host => 'acme.service-now.com',
    path => '/api/now/table/incident/INC0012345',
    request => { sha256 => sha256_hex('{"priority":2}'), size_bytes => 14,
                 content_type => 'application/json' },
    body => {}, labels => { ticket => 'INC0012345' }, approval => undef,
    counters => {},
};
spew("$dir/input.json", $json->encode($input));
my @decide = ('decide', '--bundle', $b, '--keys', "$dir/k-EdDSA.jwks.json",
              '--input', "$dir/input.json", '--now', '2026-11-22T10:00:00Z');
my ($rc1, $r1) = run(@decide);
my ($rc2, $r2) = run(@decide);
is($rc1, 0, 'decide');
is($r1, $r2, 'same input, bundle and time: byte-identical record');
my $rec = $json->decode($r1);
is($rec->{decision}, 'REQUIRE_HITL', 'the prod write is held');
is_deeply($rec->{rule_ids}, ['hitl-servicenow-write-prod'], 'by its rule');
ok($rec->{approval_request_id}, 'with an approval request id');
spew("$dir/rec.json", $r1);
($rc) = run('validate', 'PolicyDecisionRecord', "$dir/rec.json");
is($rc, 0, 'the record is schema-valid');
my ($rc3, $r3) = run(@decide[0 .. $#decide - 1], '2026-11-22T10:00:01Z');
isnt($r3, $r1, 'another time, another record');

$input->{approval} = { approval_id => 'apr-1', jti => 'j-1', approver => 'lead',
                       input_sha256 => $input->{request}{sha256} };
spew("$dir/input2.json", $json->encode($input));
($rc, $out) = run('decide', '--bundle', $b, '--keys', "$dir/k-EdDSA.jwks.json",
                  '--input', "$dir/input2.json", '--now', '2026-11-22T10:01:00Z');
is($json->decode($out)->{decision}, 'ALLOW', 'with the approval: ALLOW');

($rc, $out, $err) = run('decide', '--bundle', $b, '--input', "$dir/input.json",
                        '--now', 'yesterday');
is($rc, 2, 'a bad --now is a usage error');

done_testing();
