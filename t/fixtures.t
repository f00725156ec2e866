#!/usr/bin/perl

# The test fixtures (t/lib/FoxGov/Test/Fixtures.pm): keys, tokens,
# bundles and approvals from the real CLI verify; the hand-signed JWS
# agree with the core (a bundle signed by sign_jwt passes `foxgov bundle
# verify`, for each algorithm); each forged token has exactly its flaw.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex hmac_sha256);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

use FoxGov::Test::Fixtures qw(:all);

$SIG{ALRM} = sub { die "fixtures.t: timed out\n" };
alarm 240;

plan skip_all => foxgov_bin() . ' is not built (make cli)'
    unless -x foxgov_bin();
plan skip_all => 'no openssl command'
    unless system('openssl version >/dev/null 2>&1') == 0;

my $json = JSON::PP->new->utf8->canonical;
my $dir = tempdir('foxgov-fixtures-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);
my $now = time();

sub slurp { open my $f, '<:raw', $_[0] or die "$_[0]: $!"; local $/; <$f> }

my $policy = { default => 'DENY', rules => [
    { id => 'allow-read', match => { kind => 'tool', action => 'read' },
      decision => 'ALLOW' },
    { id => 'hitl-write', match => { kind => 'tool', action => 'write' },
      decision => 'REQUIRE_HITL' } ] };

my %key;
for my $alg (qw(EdDSA ES256 RS256)) {
    my ($pem, $jwks) = keygen("$dir/keys", "k-$alg", $alg);
    $key{$alg} = [$pem, $jwks];
    is($pem, "$dir/keys/k-$alg.pem", "keygen $alg: pem path");
    ok(-f $pem && -f $jwks, "keygen $alg: files");
    my $set = $json->decode(slurp($jwks));
    is($set->{keys}[0]{kid}, "k-$alg", "keygen $alg: kid");
    my $ki = key_info($pem);
    is($ki->{alg}, $alg, "key_info: $alg");

    # ------------------------------------------------------------ tokens
    my $tok = mint_token(key => $pem, tenant => 'acme', sub => 'svc-1',
        caps => ['model:gpt-4o*', 'tool:servicenow.incident:write'],
        ttl => '15m', workspace => 'itsm', environment => 'prod',
        acr => 'urn:foxgov:acr:mfa');
    my ($h, $c) = verify_jwt($tok, key => $pem);
    ok($c, "mint_token $alg: the signature verifies (openssl)");
    is_deeply($h, { alg => $alg, kid => "k-$alg", typ => 'JWT' },
        "mint_token $alg: header");
    is($c->{tenant_id}, 'acme', 'tenant_id');
    is($c->{sub}, 'svc-1', 'sub');
    is($c->{workspace_id}, 'itsm', 'workspace_id');
    is($c->{environment}, 'prod', 'environment');
    is($c->{acr}, 'urn:foxgov:acr:mfa', 'acr');
    is_deeply($c->{capabilities},
        ['model:gpt-4o*', 'tool:servicenow.incident:write'], 'capabilities');
    is($c->{exp} - $c->{iat}, 900, 'ttl');
    ok(abs($c->{iat} - $now) < 60, 'iat is now');
    ok(!verify_jwt($tok, key => $key{EdDSA}[0]), 'not by another key')
        unless $alg eq 'EdDSA';

    my $d = mint_token(key => $pem);
    (undef, $c) = decode_jwt($d);
    is_deeply([ @$c{qw(tenant_id sub workspace_id environment)} ],
        [qw(t1 agent-1 ws1 prod)], 'mint_token defaults');
    is_deeply($c->{capabilities}, ['model:*', 'tool:*'], 'default caps');
    ok(!exists $c->{acr}, 'no acr by default');

    # a token by sign_jwt has the CLI's shape and verifies
    my $hand = sign_jwt(key => $pem, claims => token_claims(tenant => 'acme'));
    ok(verify_jwt($hand, key => $pem), "sign_jwt $alg verifies");
    my ($hh, $hc) = decode_jwt($hand);
    is_deeply($hh, { alg => $alg, kid => "k-$alg", typ => 'JWT' },
        'sign_jwt: header as the CLI writes it');
    is_deeply([ sort keys %$hc ], [ sort keys %$c ],
        'token_claims: the claims the CLI writes');

    # ----------------------------------------------------------- bundles
    for my $tar (0, 1) {
        my $b = build_bundle(dir => "$dir/b-$alg-$tar", policy => $policy,
            prices => { currency => 'USD', unit => 'per_million_tokens',
                        models => { 'gpt-4o-2024-08-06' =>
                                    { input => 2.5, output => 10 } } },
            revision => "rev-$alg-$tar", key => $pem, tar => $tar);
        is($b, $tar ? "$dir/b-$alg-$tar.tar.gz" : "$dir/b-$alg-$tar",
            "build_bundle $alg tar=$tar: path");
        ok($tar ? -f $b : -f "$b/.signatures.json", 'signed');
        my ($rc, $out, $err) = run_foxgov('bundle', 'verify', $b,
            '--keys', $jwks);
        is($rc, 0, "bundle verify $alg tar=$tar") or diag($err);
        like($out, qr/revision=rev-\Q$alg\E-$tar .* kid=k-\Q$alg\E files=4 rules=2/,
            'revision, kid, four files (.signatures.json too), two rules');
        ($rc) = run_foxgov('bundle', 'verify', $b, '--keys',
            $key{EdDSA}[1]);
        isnt($rc, 0, 'another key does not verify it') unless $alg eq 'EdDSA';
    }

    # the hand signer against the core: a bundle signed by sign_jwt
    my $hb = build_bundle(dir => "$dir/h-$alg", policy => $policy,
        revision => "hand-$alg", key => $pem, compile => 0, tar => 1);
    my ($rc, $out, $err) = run_foxgov('bundle', 'verify', $hb,
        '--keys', $jwks);
    is($rc, 0, "a bundle signed by sign_jwt ($alg) passes foxgov bundle "
        . 'verify') or diag($err);
}

my ($epem, $ejwks) = @{ $key{EdDSA} };

# bundles that must be refused
{
    my $b = build_bundle(dir => "$dir/unsigned", policy => $policy);
    ok(!-e "$b/.signatures.json", 'no key: unsigned');
    my ($rc, $out, $err) = run_foxgov('bundle', 'verify', $b, '--keys',
        $ejwks);
    is($rc, 1, 'an unsigned bundle does not verify');

    ok(!eval { build_bundle(dir => "$dir/bad", key => $epem,
        policy => { rules => [ { id => 'x', match => { modle => 'a' },
                                 decision => 'ALLOW' } ] }); 1 },
        'build_bundle dies on a policy that does not compile');
    like($@, qr/unknown match key/, 'with the CLI message');

    $b = build_bundle(dir => "$dir/bad-signed", key => $epem, compile => 0,
        policy => '{"rules":[{"id":"x","match":{"modle":"a"},'
                . '"decision":"ALLOW"}]}');
    ($rc, $out, $err) = run_foxgov('bundle', 'verify', $b, '--keys', $ejwks);
    is($rc, 1, 'compile => 0: signed, but refused');
    like($err, qr/policy\.json: rules\[0\] \(x\)/, 'for its policy');

    $b = build_bundle(dir => "$dir/tampered", key => $epem, policy => $policy);
    open my $f, '>>', "$b/policy.json" or die;
    print {$f} "\n";
    close $f;
    ($rc, $out, $err) = run_foxgov('bundle', 'verify', $b, '--keys', $ejwks);
    is($rc, 1, 'a file changed after signing is refused');

    $b = build_bundle(dir => "$dir/with-tests", key => $epem,
        policy => $policy, tests => { cases => { cases => [
            { name => 'read', now => '2026-11-22T10:00:00Z',
              input => { kind => 'tool', action => 'read' },
              expect => { decision => 'ALLOW' } } ] } },
        manifest => { metadata => { note => 'x' } });
    ($rc, $out) = run_foxgov('bundle', 'test', $b, '--keys', $ejwks);
    is($rc, 0, 'tests => ... are run by foxgov bundle test');
    like($out, qr/^1 passed, 0 failed/m, 'one case');
    is($json->decode(slurp("$b/.manifest"))->{metadata}{note}, 'x',
        'manifest members merged');

    ok(!eval { build_bundle(dir => "$dir/with-tests", policy => $policy); 1 },
        'build_bundle refuses a directory that is not empty');
}

# approvals
{
    my ($apem) = keygen("$dir/keys", 'approver', 'ES256');
    my $req = { approval_request_id => 'apr-0193', tenant_id => 'acme',
                tool => 'servicenow.incident', action => 'write',
                input_sha256 => sha256_hex('{"priority":2}'),
                expires_at => '2026-11-22T10:15:00Z',
                extra_member => 'ignored' };
    my $tok = approve(key => $apem, request => $req, approver => 'alice',
        ttl => '10m');
    my ($h, $c) = verify_jwt($tok, key => $apem);
    ok($c, 'approve: the signature verifies');
    is($h->{typ}, 'foxgov-approval+jwt', 'approval typ');
    is($c->{$_}, $req->{$_}, "approval bound to $_")
        for qw(approval_request_id tenant_id tool action input_sha256);
    is($c->{sub}, 'alice', 'approver');
    is($c->{exp} - $c->{iat}, 600, 'ttl');
    ok($c->{jti}, 'jti');
    ok(!exists $c->{extra_member}, 'only the bound fields');
    my $t2 = approve(key => $apem, request => $req);
    isnt((decode_jwt($t2))[1]{jti}, $c->{jti}, 'a new jti each time');
    is((decode_jwt($t2))[1]{sub}, 'alice', 'approver defaults to alice');
    ok(!eval { approve(key => $apem, request => { %$req,
        input_sha256 => 'nope' }); 1 }, 'approve dies on a bad request');
}

# HS256
{
    my ($p, $secret) = write_hs256_jwks("$dir/hs.jwks.json", kid => 'hs-1');
    is(length $secret, 32, '32-byte secret');
    my $set = $json->decode(slurp($p));
    is_deeply([ sort keys %{ $set->{keys}[0] } ], [qw(alg k kid kty use)],
        'oct JWK members');
    is(b64url_decode($set->{keys}[0]{k}), $secret, 'k is the secret');
    is(key_info($p)->{alg}, 'HS256', 'key_info: HS256');
    my $tok = sign_jwt(secret => $secret, kid => 'hs-1',
        claims => token_claims());
    my ($h) = verify_jwt($tok, secret => $secret);
    is_deeply($h, { alg => 'HS256', kid => 'hs-1', typ => 'JWT' },
        'an HS256 token');
    ok(!verify_jwt($tok, secret => 'x' x 32), 'not with another secret');

    # the core loads the oct JWKS (and then refuses HS256 for a bundle,
    # which is the point: it read the key)
    my $b = build_bundle(dir => "$dir/hs-b", policy => $policy,
        key => $epem);
    my ($rc, $out, $err) = run_foxgov('bundle', 'verify', $b, '--keys', $p);
    isnt($rc, 0, 'an HS256 key set verifies no bundle');
    unlike($err, qr/hs\.jwks\.json: /, 'but the key file loads') or diag($err);
}

# forged tokens: each has its one flaw
{
    my %ok = (expired => 1, future_nbf => 1, future_iat => 1,
              unknown_kid => 1, oversized => 1, no_exp => 1,
              bad_tenant => 1, crit => 1);
    for my $alg (qw(EdDSA ES256 RS256)) {
        my $pem = $key{$alg}[0];
        my %f = map { $_ => forge_token($_, key => $pem, tenant => 'acme') }
            @FORGE_KINDS;
        for my $k (sort keys %ok) {
            ok(verify_jwt($f{$k}, key => $pem, alg => $alg),
                "$alg $k: good signature");
        }
        my $t = time();
        my (@p, $h, $c);

        ($h, $c) = decode_jwt($f{expired});
        ok($c->{exp} < $t - 1800 && $c->{iat} < $c->{exp}, "$alg expired");
        ($h, $c) = decode_jwt($f{future_nbf});
        ok($c->{nbf} > $t + 1800 && $c->{exp} > $c->{nbf},
            "$alg future_nbf");
        ($h, $c) = decode_jwt($f{future_iat});
        ok($c->{iat} > $t + 1800, "$alg future_iat");
        ($h) = decode_jwt($f{unknown_kid});
        is($h->{kid}, 'no-such-kid', "$alg unknown_kid");
        ok(length $f{oversized} > 16384 && length $f{oversized} < 17000,
            "$alg oversized: " . length($f{oversized}) . ' bytes');
        ($h, $c) = decode_jwt($f{no_exp});
        ok(!exists $c->{exp}, "$alg no_exp");
        ($h, $c) = decode_jwt($f{bad_tenant});
        is($c->{tenant_id}, 'ACME/../t2', "$alg bad_tenant");
        ($h) = decode_jwt($f{crit});
        ok($h->{crit}, "$alg crit header");

        @p = split /\./, $f{alg_none}, -1;
        is(scalar @p, 3, "$alg alg_none: three parts");
        is($p[2], '', 'alg_none: empty signature');
        ($h, $c) = decode_jwt($f{alg_none});
        is($h->{alg}, 'none', 'alg_none: alg none');
        is($c->{tenant_id}, 'acme', 'alg_none: claims');

        ($h, $c) = decode_jwt($f{alg_confusion});
        is($h->{alg}, 'HS256', "$alg alg_confusion: HS256");
        is($h->{kid}, "k-$alg", 'alg_confusion: the asymmetric key\'s kid');
        ok(verify_jwt($f{alg_confusion}, secret => public_pem($pem)),
            'alg_confusion: HMAC keyed with the public key PEM');
        my $cj = forge_token('alg_confusion', key => $pem,
            secret_from => 'jwk');
        ok(verify_jwt($cj, secret => $json->encode(key_info($pem)->{jwk})),
            'alg_confusion secret_from jwk');

        my $good = $f{bad_signature};
        @p = split /\./, $good;
        is(scalar @p, 3, "$alg bad_signature: three parts");
        ok(defined b64url_decode($p[2]), 'bad_signature: still base64url');
        ok(!verify_jwt($good, key => $pem), 'bad_signature: does not verify');
        ok(decode_jwt($good) && (decode_jwt($good))[1]{tenant_id} eq 'acme',
            'bad_signature: claims intact');

        ok(split(/\./, $f{truncated}) < 3, "$alg truncated: not three parts");
        ok(length $f{truncated} < length $good, 'truncated: shorter');

        @p = split /\./, $f{padded};
        like($p[1], qr/=+\z/, "$alg padded: payload padded");
        is(scalar @p, 3, 'padded: three parts');
    }

    ok(!verify_jwt(forge_token('expired', key => $epem), key => $key{ES256}[0]),
        'verify_jwt: key mismatch refused');
    ok(!eval { forge_token('nonsense', key => $epem); 1 }, 'unknown kind');
}

alarm 0;
done_testing();
