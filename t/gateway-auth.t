#!/usr/bin/perl

# Caller tokens at the gateway (DESIGN.md "AuthContext", INV-INT-004):
# every algorithm the design names verifies, every token attack is a 401
# with no record at all, the AuthContext says what was verified, and
# neither the token nor a key reaches a log line the module writes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use Test::More;

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Fixtures qw(:all);
use FoxGov::Test::Gateway;

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $JSON = JSON::PP->new->utf8->canonical;

my $g = FoxGov::Test::Gateway->new(
    http_config => 'large_client_header_buffers 4 32k;');
my $d = $g->dir;

# One key set with a key of every algorithm: the gateway's caller key
# (EdDSA, kid "caller") and ES256, RS256, HS256 keys.
my ($es_pem, $es_jwks) = keygen("$d/keys", 'es', 'ES256');
my ($rs_pem, $rs_jwks) = keygen("$d/keys", 'rs', 'RS256');
my (undef, $hs_secret) = write_hs256_jwks("$d/keys/hs.jwks.json",
    kid => 'hs', secret => 'k' x 40);

my @keys;
for my $f ($g->{auth_jwks}, $es_jwks, $rs_jwks, "$d/keys/hs.jwks.json") {
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    push @keys, @{ $JSON->decode(<$fh>)->{keys} };
}
$g->nginx->write_file('keys/all.jwks.json',
                      $JSON->encode({ keys => \@keys }));
$g->{auth_jwks} = "$d/keys/all.jwks.json";

$g->start;

my $body = { model => 'gpt-4o', messages => [ { role => 'user',
                                                content => 'hi' } ] };

sub call {
    my ($tok, %o) = @_;
    return $g->request(POST => '/v1/chat/completions', token => $tok,
                       body => $body, %o);
}

# ----------------------------------------------------- algorithms

my %good = (
    EdDSA => $g->token(kid => 'caller'),
    ES256 => mint_token(key => $es_pem, kid => 'es', tenant => 'acme'),
    RS256 => mint_token(key => $rs_pem, kid => 'rs', tenant => 'acme'),
    HS256 => sign_jwt(secret => $hs_secret, alg => 'HS256', kid => 'hs',
                      claims => token_claims(tenant => 'acme')),
);

for my $alg (sort keys %good) {
    my $r = call($good{$alg});
    is($r->{status}, 200, "$alg token: 200") or diag($r->{raw});
    my $exec = $r->{headers}{'foxgov-execution-id'};
    $g->wait_call_record($exec);
    my ($auth) = grep { $_->{type} eq 'AuthContext' } $g->records_for($exec);
    is($auth->{record}{alg}, $alg, "$alg: AuthContext alg");
    is($auth->{record}{tenant_id}, 'acme', "$alg: tenant from the token");
}

# The cached verification: the same token again is still verified for
# this call (its own AuthContext, its own execution).
{
    my $r1 = call($good{EdDSA});
    my $r2 = call($good{EdDSA});
    isnt($r1->{headers}{'foxgov-execution-id'},
         $r2->{headers}{'foxgov-execution-id'}, 'cached token: new call');
    is($r2->{status}, 200, 'cached token: 200');
}

# --------------------------------------------------------- refusals

my @refused;     # execution ids of the refused calls

for my $kind (@FORGE_KINDS) {
    my %o = (tenant => 'acme');
    $o{key} = $g->{auth_pem} unless $kind eq 'alg_none';
    $o{key} = $rs_pem if $kind eq 'alg_confusion';
    my $tok = forge_token($kind, %o);
    my $r = call($tok);
    push @refused, $r->{headers}{'foxgov-execution-id'};
    is($r->{status}, 401, "$kind: 401") or diag($r->{raw});
    is($r->{json}{error}{code}, 'invalid_token', "$kind: code");
    like($r->{headers}{'www-authenticate'} // '',
         qr/^Bearer error="invalid_token"$/, "$kind: WWW-Authenticate");
    unlike($r->{body}, qr/\Q$tok\E/, "$kind: the answer does not quote it");
}

# RS/HS confusion with the JWK and raw forms of the public key too
for my $from (qw(jwk raw)) {
    my $tok = forge_token('alg_confusion', key => $rs_pem, tenant => 'acme',
                          secret_from => $from);
    my $r = call($tok);
    push @refused, $r->{headers}{'foxgov-execution-id'};
    is($r->{status}, 401, "alg_confusion ($from secret): 401");
}

# a capability that is not model:/tool:, a claim missing, a bad tenant
for my $case ([ 'no workspace', extra => { workspace_id => undef } ],
              [ 'bad capability', caps => [ 'admin:*' ] ],
              [ 'tenant path trick', tenant => '../etc' ],
              [ 'uppercase tenant', tenant => 'ACME' ]) {
    my ($name, %o) = @$case;
    my $tok = sign_jwt(key => $g->{auth_pem}, kid => 'caller',
                       claims => token_claims(tenant => 'acme', %o));
    my $r = call($tok);
    push @refused, $r->{headers}{'foxgov-execution-id'};
    is($r->{status}, 401, "$name: 401");
}

# a token meant for another key set entirely
{
    my ($other) = keygen("$d/keys", 'stranger', 'EdDSA');
    my $r = call(mint_token(key => $other, tenant => 'acme'));
    push @refused, $r->{headers}{'foxgov-execution-id'};
    is($r->{status}, 401, 'a token from an unknown key: 401');
}

sleep 0.3;
is(scalar(grep { defined } @refused), scalar @refused,
   'every refusal carries FoxGov-Execution-Id');
is(scalar(map { $g->records_for($_) } grep { defined } @refused), 0,
   'INV-INT-004: no refused token left an AuthContext, a decision or a '
   . 'call record');

is($g->stop, 0, 'nginx stops cleanly');
my ($ok, @bad) = $g->nginx->error_log_ok();
ok($ok, 'no alerts') or diag(join "\n", @bad);

# every line the module writes, and every line above debug (nginx's own
# debug lines print request headers as received)
my ($keep, @lines) = (1);
for (split /\n/, $g->nginx->read_file('error.log')) {
    $keep = !/\[debug\]/ || /foxgov/ if m{^\d{4}/\d\d/\d\d };
    push @lines, $_ if $keep;
}
my $log = join "\n", @lines;
like($log, qr/foxgov: token from authorization refused: /,
     'refusals are logged with their reason');
for my $alg (sort keys %good) {
    unlike($log, qr/\Q$good{$alg}\E/, "the $alg token is in no log line");
}
unlike($log, qr/\Q$hs_secret\E/, 'the HS256 secret is in no log line');

done_testing();
