package FoxGov::Test::Fixtures;

# Keys, caller tokens, policy bundles and approvals for foxgov's
# integration tests, made with the real CLI (build/bin/foxgov), plus
# hand-built JWS for what the CLI will not make: HS256 keys and the forged
# tokens refusal tests need.  Signing outside the CLI goes through the
# openssl command (EdDSA, ES256, RS256) or Digest::SHA (HS256).  The POD at
# the end lists the functions.

use strict;
use warnings;

use IO::Socket::INET;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex hmac_sha256);
use Exporter qw(import);
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use File::Spec;
use File::Temp qw(tempdir);
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(
    foxgov_bin run_foxgov
    keygen mint_token build_bundle approve
    write_hs256_jwks sign_jwt verify_jwt decode_jwt token_claims
    forge_token @FORGE_KINDS
    b64url b64url_decode public_pem key_info free_port
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

our @FORGE_KINDS = qw(
    alg_none alg_confusion expired future_nbf future_iat bad_signature
    unknown_kid truncated oversized no_exp bad_tenant crit padded
);

my $ROOT = abs_path(File::Spec->catdir(dirname(__FILE__),
    File::Spec->updir(), File::Spec->updir(), File::Spec->updir(),
    File::Spec->updir()));

my $JSON = JSON::PP->new->utf8->canonical;

my $SCRATCH;    # temp files for openssl and the CLI
sub _scratch { return $SCRATCH //= tempdir('foxgov-fx-XXXXXXXX',
    TMPDIR => 1, CLEANUP => 1) }

my $SEQ = 0;
sub _tmpfile {
    my ($content, $suffix) = @_;
    my $p = _scratch() . '/f' . $$ . '-' . ++$SEQ . ($suffix // '');
    _spew($p, $content) if defined $content;
    return $p;
}

sub _spew {
    my ($p, $c) = @_;
    open my $f, '>:raw', $p or die "$p: $!\n";
    print {$f} $c;
    close $f or die "$p: $!\n";
    return $p;
}

sub _slurp {
    my ($p) = @_;
    open my $f, '<:raw', $p or die "$p: $!\n";
    local $/;
    my $c = <$f>;
    close $f;
    return $c // '';
}

###########################################################################
# Running commands

# A loopback TCP port free now, for a server a test starts.
sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', ReuseAddr => 1)
        or die "cannot bind a loopback port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub foxgov_bin {
    return $ENV{FOXGOV_CLI} // "$ROOT/build/bin/foxgov";
}

# Run a command with a deadline: (exit code, stdout, stderr).  Options
# (a hashref as first argument): stdin => bytes, timeout => seconds (30).
# The exit code is -1 when it had to be killed.
sub _run {
    my $o = ref $_[0] eq 'HASH' ? shift : {};
    my @cmd = @_;
    my $timeout = $o->{timeout} // 30;

    my $in = _tmpfile($o->{stdin} // '');
    my $out = _tmpfile('');
    my $err = _tmpfile('');

    my $pid = fork();
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', $in or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }

    my $rc;
    my $deadline = time() + $timeout;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $? >> 8; last }
        if (time() > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.005;
    }

    my @r = ($rc, _slurp($out), _slurp($err));
    unlink $in, $out, $err;
    return @r;
}

sub run_foxgov {
    my $o = ref $_[0] eq 'HASH' ? shift : {};
    return _run($o, foxgov_bin(), @_);
}

sub _foxgov_ok {
    my ($what, @args) = @_;
    my ($rc, $out, $err) = run_foxgov(@args);
    die "foxgov $what failed ($rc): $err$out\n" if $rc != 0;
    return $out;
}

sub _openssl_ok {
    my (@args) = @_;
    my ($rc, $out, $err) = _run('openssl', @args);
    die "openssl @args[0,1] failed ($rc): $err\n" if $rc != 0;
    return $out;
}

###########################################################################
# base64url, JWS

sub b64url {
    my ($b) = @_;
    my $s = encode_base64($b, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+\z//;
    return $s;
}

sub b64url_decode {
    my ($s) = @_;
    return undef unless defined $s && $s =~ /\A[A-Za-z0-9_-]*\z/;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

# (header hashref, claims hashref, signature bytes) of a compact JWS;
# undef members where a part does not decode.
sub decode_jwt {
    my ($token) = @_;
    my @p = split /\./, $token, -1;
    my $h = eval { $JSON->decode(b64url_decode($p[0] // '') // '') };
    my $c = eval { $JSON->decode(b64url_decode($p[1] // '') // '') };
    return ($h, $c, b64url_decode($p[2] // ''));
}

###########################################################################
# Keys

# keygen($dir, $kid, $alg) -> ($pem_path, $jwks_path), with foxgov keygen.
sub keygen {
    my ($dir, $kid, $alg) = @_;
    $alg //= 'EdDSA';
    make_path($dir);
    _foxgov_ok('keygen', 'keygen', '--kid', $kid, '--alg', $alg,
        '--out', $dir);
    return ("$dir/$kid.pem", "$dir/$kid.jwks.json");
}

# Write an HS256 JWKS (one oct key).  Returns ($path, $secret_bytes); the
# secret is 32 random bytes unless given.
sub write_hs256_jwks {
    my ($path, %o) = @_;
    my $kid = $o{kid} // 'hs-1';
    my $secret = $o{secret} // join '', map { chr int rand 256 } 1 .. 32;
    my $jwk = { kty => 'oct', kid => $kid, alg => 'HS256', use => 'sig',
                k => b64url($secret) };
    _spew($path, $JSON->encode({ keys => [$jwk] }) . "\n");
    return ($path, $secret);
}

# {alg, kid, kty, jwk, pem} for a key file: a PEM (kid: the file name less
# .pem; the JWKS foxgov keygen writes beside it gives the JWK) or a JWKS /
# JWK file (its first key, or the one named kid).
sub key_info {
    my ($path, $kid) = @_;

    my $text = _slurp($path);
    my %alg = (OKP => 'EdDSA', EC => 'ES256', RSA => 'RS256',
               oct => 'HS256');

    if ($text =~ /-----BEGIN/) {
        my $k = $kid // basename($path) =~ s/\.pem\z//r;
        (my $jwks_path = $path) =~ s/\.pem\z/.jwks.json/;
        my $jwk;
        if (-f $jwks_path) {
            my $set = $JSON->decode(_slurp($jwks_path));
            ($jwk) = @{ $set->{keys} || [] };
        }
        my $kty = $jwk ? $jwk->{kty} : do {
            my $t = _openssl_ok('pkey', '-in', $path, '-noout', '-text');
            $t =~ /ED25519/i ? 'OKP' : $t =~ /ASN1 OID|NIST CURVE/i ? 'EC'
                : $t =~ /modulus/i ? 'RSA' : die "$path: unknown key type\n";
        };
        return { alg => $alg{$kty}, kid => $k, kty => $kty, jwk => $jwk,
                 pem => $path };
    }

    my $doc = $JSON->decode($text);
    my @keys = $doc->{keys} ? @{ $doc->{keys} } : ($doc);
    my ($jwk) = defined $kid ? grep { ($_->{kid} // '') eq $kid } @keys
                             : @keys;
    die "$path: no key" . (defined $kid ? " $kid" : '') . "\n" unless $jwk;
    return { alg => $alg{ $jwk->{kty} }, kid => $jwk->{kid},
             kty => $jwk->{kty}, jwk => $jwk,
             ($jwk->{kty} eq 'oct' ? (secret => b64url_decode($jwk->{k}))
                                   : ()) };
}

# The public key of a PEM private key, as PEM text.
sub public_pem {
    my ($pem) = @_;
    return _openssl_ok('pkey', '-in', $pem, '-pubout');
}

###########################################################################
# Signing and verifying by hand

sub _der_len {
    my ($d, $i) = @_;
    my $l = ord substr($d, $$i++, 1);
    return $l if $l < 0x80;
    my $n = $l & 0x7f;
    $l = 0;
    $l = ($l << 8) | ord substr($d, $$i++, 1) for 1 .. $n;
    return $l;
}

# DER ECDSA-Sig-Value -> JOSE r||s (32 + 32 bytes).
sub _der_to_rs {
    my ($d) = @_;
    my $i = 0;
    die "not a DER signature\n" unless ord substr($d, $i++, 1) == 0x30;
    _der_len($d, \$i);
    my @rs;
    for (1 .. 2) {
        die "not a DER integer\n" unless ord substr($d, $i++, 1) == 0x02;
        my $l = _der_len($d, \$i);
        my $v = substr($d, $i, $l);
        $i += $l;
        $v =~ s/\A\x00+//;
        push @rs, ("\x00" x (32 - length $v)) . $v;
    }
    return join '', @rs;
}

sub _rs_to_der {
    my ($rs) = @_;
    my @ints = map {
        my $v = $_;
        $v =~ s/\A\x00+//;
        $v = "\x00" unless length $v;
        $v = "\x00$v" if ord($v) & 0x80;
        "\x02" . chr(length $v) . $v;
    } (substr($rs, 0, 32), substr($rs, 32, 32));
    my $body = join '', @ints;
    return "\x30" . chr(length $body) . $body;
}

sub _sign_bytes {
    my ($alg, $input, %o) = @_;

    if ($alg eq 'HS256') {
        die "HS256 needs secret\n" unless defined $o{secret};
        return hmac_sha256($input, $o{secret});
    }

    my $pem = $o{key} or die "$alg needs key\n";
    my $in = _tmpfile($input);
    my $sigf = _tmpfile(undef);
    if ($alg eq 'EdDSA') {
        _openssl_ok('pkeyutl', '-sign', '-inkey', $pem, '-rawin',
            '-in', $in, '-out', $sigf);
    } elsif ($alg eq 'ES256' || $alg eq 'RS256') {
        _openssl_ok('dgst', '-sha256', '-sign', $pem, '-out', $sigf, $in);
    } else {
        die "cannot sign with $alg\n";
    }
    my $sig = _slurp($sigf);
    unlink $in, $sigf;
    return $alg eq 'ES256' ? _der_to_rs($sig) : $sig;
}

# sign_jwt(key => PEM | secret => BYTES, header => {...}, claims => {...}
#          | payload => BYTES, alg => ALG, kid => KID) -> compact JWS.
# alg and kid default from the key (PEM: its type and file name); header
# members given win (so a header can lie about alg or kid).  header =>
# raw string / payload => raw string are used as the exact bytes.
sub sign_jwt {
    my (%o) = @_;

    my ($alg, $kid) = ($o{alg}, $o{kid});
    if ($o{key}) {
        my $ki = key_info($o{key});
        $alg //= $ki->{alg};
        $kid //= $ki->{kid};
    }
    $alg //= 'HS256' if defined $o{secret};
    die "sign_jwt: key or secret required\n" unless $alg;

    my $hdr = $o{header};
    if (!defined $hdr || ref $hdr) {
        $hdr = { alg => $alg, (defined $kid ? (kid => $kid) : ()),
                 typ => 'JWT', %{ $hdr || {} } };
        delete $hdr->{$_} for grep { !defined $hdr->{$_} } keys %$hdr;
        $hdr = $JSON->encode($hdr);
    }
    my $payload = $o{payload} // $JSON->encode($o{claims} || {});

    my $input = b64url($hdr) . '.' . b64url($payload);
    $input = $o{mangle_input}->($input) if $o{mangle_input};
    my $sign_alg = $o{sign_alg} // $alg;
    return "$input." . b64url(_sign_bytes($sign_alg, $input,
        key => $o{key}, secret => $o{secret}));
}

# verify_jwt($token, key => PEM (private or public) | secret => BYTES,
# alg => ALG) -> (header, claims) when the signature verifies (an
# independent check with openssl), else the empty list.  Claims (exp, nbf)
# are not checked.
sub verify_jwt {
    my ($token, %o) = @_;
    my ($h, $c) = decode_jwt($token);
    return () unless $h && $c;
    my @p = split /\./, $token, -1;
    return () unless @p == 3;
    my $input = "$p[0].$p[1]";
    my $sig = b64url_decode($p[2]);
    return () unless defined $sig;
    my $alg = $o{alg} // $h->{alg} // '';

    if ($alg eq 'HS256') {
        return () unless defined $o{secret};
        return hmac_sha256($input, $o{secret}) eq $sig ? ($h, $c) : ();
    }

    my $key = $o{key} or return ();
    my $pub = _tmpfile(_slurp($key) =~ /PRIVATE KEY/ ? public_pem($key)
                                                     : _slurp($key));
    my $in = _tmpfile($input);
    my $sf = _tmpfile($alg eq 'ES256' ? (length $sig == 64
        ? _rs_to_der($sig) : return ()) : $sig);
    my ($rc) = $alg eq 'EdDSA'
        ? _run('openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', $pub,
               '-rawin', '-in', $in, '-sigfile', $sf)
        : $alg eq 'ES256' || $alg eq 'RS256'
        ? _run('openssl', 'dgst', '-sha256', '-verify', $pub,
               '-signature', $sf, $in)
        : (1);
    unlink $pub, $in, $sf;
    return $rc == 0 ? ($h, $c) : ();
}

###########################################################################
# Caller tokens

# mint_token(key => PEM, tenant => 't1', sub => 'agent-1', caps => [...],
#            ttl => '1h', workspace => 'ws1', environment => 'prod',
#            acr => undef, kid => undef, iss => undef) -> token, with
# foxgov token mint.
sub mint_token {
    my (%o) = @_;
    my @a = ('token', 'mint', '--key', $o{key} // die("mint_token: key\n"),
        '--tenant', $o{tenant} // 't1', '--sub', $o{sub} // 'agent-1',
        '--ttl', $o{ttl} // '1h',
        '--workspace', $o{workspace} // 'ws1',
        '--environment', $o{environment} // 'prod');
    push @a, '--cap', $_ for @{ $o{caps} // ['model:*', 'tool:*'] };
    push @a, '--acr', $o{acr} if defined $o{acr};
    push @a, '--kid', $o{kid} if defined $o{kid};
    push @a, '--iss', $o{iss} if defined $o{iss};
    my $t = _foxgov_ok('token mint', @a);
    $t =~ s/\s+\z//;
    return $t;
}

sub _uuidv7 {
    my $ms = int(time() * 1000);
    my $hex = sprintf('%012x', $ms)
        . join('', map { sprintf '%02x', int rand 256 } 1 .. 10);
    substr($hex, 12, 1) = '7';
    substr($hex, 16, 1) = (qw(8 9 a b))[rand 4];
    return join '-', substr($hex, 0, 8), substr($hex, 8, 4),
        substr($hex, 12, 4), substr($hex, 16, 4), substr($hex, 20, 12);
}

# The claims foxgov token mint writes, for hand-built tokens: same options
# as mint_token (ttl in seconds), plus now => epoch and extra => {...}
# (merged last; an undef value deletes the claim).
sub token_claims {
    my (%o) = @_;
    my $now = $o{now} // time();
    $now = int $now;
    my $c = {
        iss => $o{iss} // 'foxgov',
        sub => $o{sub} // 'agent-1',
        tenant_id => $o{tenant} // 't1',
        workspace_id => $o{workspace} // 'ws1',
        environment => $o{environment} // 'prod',
        capabilities => $o{caps} // ['model:*', 'tool:*'],
        iat => $now,
        exp => $now + ($o{ttl} // 3600),
        jti => _uuidv7(),
        (defined $o{acr} ? (acr => $o{acr}) : ()),
    };
    for my $k (keys %{ $o{extra} || {} }) {
        if (defined $o{extra}{$k}) { $c->{$k} = $o{extra}{$k} }
        else { delete $c->{$k} }
    }
    return $c;
}

# forge_token(KIND, key => PEM, %claims_options) -> a token the gateway
# must refuse (401).  KIND is one of @FORGE_KINDS; the POD says what each
# is.  Options: key (the signing key, required except for alg_none),
# secret_from ('pem', 'jwk' or 'raw') for alg_confusion, and the
# token_claims options.
sub forge_token {
    my ($kind, %o) = @_;
    my $key = $o{key};
    my $now = int time();
    my $ki = $key ? key_info($key) : undef;

    my $claims = sub { token_claims(%o, now => $now, @_) };
    my $signed = sub { sign_jwt(key => $key, @_) };

    if ($kind eq 'alg_none') {
        my $h = { alg => 'none', typ => 'JWT',
                  ($ki ? (kid => $ki->{kid}) : ()) };
        return b64url($JSON->encode($h)) . '.'
            . b64url($JSON->encode($claims->())) . '.';
    }

    die "forge_token $kind: key required\n" unless $key;

    if ($kind eq 'alg_confusion') {
        die "forge_token alg_confusion: needs an asymmetric key\n"
            if $ki->{kty} eq 'oct';
        my $from = $o{secret_from} // 'pem';
        my $secret = $from eq 'pem' ? public_pem($key)
            : $from eq 'jwk' ? $JSON->encode($ki->{jwk})
            : $from eq 'raw' ? b64url_decode($ki->{jwk}{x} // $ki->{jwk}{n})
            : die "secret_from: pem, jwk or raw\n";
        return sign_jwt(secret => $secret, alg => 'HS256',
            kid => $ki->{kid}, claims => $claims->());
    }
    if ($kind eq 'expired') {
        return $signed->(claims => token_claims(%o, now => $now - 7200,
            ttl => 3600));
    }
    if ($kind eq 'future_nbf') {
        return $signed->(claims => $claims->(ttl => 7200, extra => {
            nbf => $now + 3600, %{ $o{extra} || {} } }));
    }
    if ($kind eq 'future_iat') {
        return $signed->(claims => token_claims(%o, now => $now + 3600));
    }
    if ($kind eq 'bad_signature') {
        my $t = $signed->(claims => $claims->());
        my $i = rindex($t, '.') + 10;    # inside the signature, not at its
        my $ch = substr($t, $i, 1);      # end (no unused-bits trouble)
        substr($t, $i, 1) = $ch eq 'A' ? 'B' : 'A';
        return $t;
    }
    if ($kind eq 'unknown_kid') {
        return $signed->(kid => 'no-such-kid', claims => $claims->());
    }
    if ($kind eq 'truncated') {
        # the header and half the payload: two parts
        my ($h, $p) = split /\./, $signed->(claims => $claims->());
        return "$h." . substr($p, 0, int(length($p) / 2));
    }
    if ($kind eq 'oversized') {
        # just over the bound: size => N bytes (default 16500)
        my $want = $o{size} // 16500;
        my $c = $claims->();
        my $base = length $signed->(claims => { %$c, pad => '' });
        my $pad = $want > $base ? int(($want - $base) * 3 / 4) + 1 : 0;
        return $signed->(claims => { %$c, pad => 'x' x $pad });
    }
    if ($kind eq 'no_exp') {
        return $signed->(claims => $claims->(extra => { exp => undef }));
    }
    if ($kind eq 'bad_tenant') {
        return $signed->(claims => $claims->(extra => {
            tenant_id => 'ACME/../t2' }));
    }
    if ($kind eq 'crit') {
        return $signed->(header => { crit => ['foxgov-x'], 'foxgov-x' => 1 },
            claims => $claims->());
    }
    if ($kind eq 'padded') {
        # base64url with '=' padding, signed as it stands
        my $c = $claims->();
        my $p;
        for my $n (0 .. 3) {
            $c->{jti} .= 'x' if $n;
            $p = b64url($JSON->encode($c));
            last if length($p) % 4;
        }
        return $signed->(claims => $c, mangle_input => sub {
            my ($in) = @_;
            $in . ('=' x (4 - length($p) % 4));
        });
    }
    die "forge_token: unknown kind $kind (one of @FORGE_KINDS)\n";
}

###########################################################################
# Approvals

# approve(key => PEM, request => {approval object of the 428}, approver =>
# 'alice', ttl => '15m', kid => undef) -> approval token, with foxgov
# approve.
sub approve {
    my (%o) = @_;
    my $req = $o{request} or die "approve: request required\n";
    my $rf = _tmpfile(ref $req ? $JSON->encode($req) : $req, '.json');
    my @a = ('approve', '--key', $o{key} // die("approve: key\n"),
        '--request', $rf);
    push @a, '--approver', $o{approver} // 'alice';
    push @a, '--ttl', $o{ttl} // '15m';
    push @a, '--kid', $o{kid} if defined $o{kid};
    my $t = eval { _foxgov_ok('approve', @a) };
    unlink $rf;
    die $@ unless defined $t;
    $t =~ s/\s+\z//;
    return $t;
}

###########################################################################
# Bundles

sub _files_under {
    my ($dir, $rel) = @_;
    my @f;
    opendir(my $dh, "$dir/$rel") or die "$dir/$rel: $!\n";
    for my $e (sort readdir $dh) {
        next if $e eq '.' || $e eq '..';
        my $r = length $rel ? "$rel/$e" : $e;
        if (-d "$dir/$r") { push @f, _files_under($dir, $r) }
        elsif (-f "$dir/$r") { push @f, $r }
    }
    closedir $dh;
    return @f;
}

# build_bundle(dir => OUT, policy => {...} | 'raw text', prices => {...} |
#              undef, revision => 'r1', key => PEM | undef, kid => undef,
#              tar => 0|1, out => OUT.tar.gz, manifest => {...} | 'raw',
#              tests => {name => {...}}, files => {name => bytes},
#              compile => 1|0) -> the bundle's path.
sub build_bundle {
    my (%o) = @_;
    my $dir = $o{dir} or die "build_bundle: dir required\n";
    my $compile = $o{compile} // 1;

    make_path($dir);
    my @old = grep { $_ ne '.' && $_ ne '..' } do {
        opendir(my $dh, $dir) or die "$dir: $!\n"; readdir $dh };
    die "build_bundle: $dir is not empty\n" if @old;

    my $enc = sub { ref $_[0] ? JSON::PP->new->utf8->canonical->pretty
                                    ->encode($_[0]) : $_[0] };

    my $manifest = $o{manifest};
    if (!defined $manifest || ref $manifest) {
        $manifest = { revision => $o{revision} // 'r1',
                      roots => ['foxgov'], %{ $manifest || {} } };
    }
    _spew("$dir/.manifest", $enc->($manifest));
    _spew("$dir/policy.json", $enc->($o{policy}
        // die "build_bundle: policy required\n"));
    _spew("$dir/prices.json", $enc->($o{prices})) if defined $o{prices};
    for my $t (sort keys %{ $o{tests} || {} }) {
        make_path("$dir/tests");
        my $n = $t =~ /\.json\z/ ? $t : "$t.json";
        _spew("$dir/tests/$n", $enc->($o{tests}{$t}));
    }
    for my $f (sort keys %{ $o{files} || {} }) {
        make_path(dirname("$dir/$f"));
        _spew("$dir/$f", $o{files}{$f});
    }

    my $out = $o{out} // "$dir.tar.gz";
    my @kid = defined $o{kid} ? ('--kid', $o{kid}) : ();

    if ($compile) {
        if ($o{tar}) {
            _foxgov_ok('bundle build', 'bundle', 'build', $dir, '-o', $out,
                ($o{key} ? ('--key', $o{key}, @kid) : ()));
            return $out;
        }
        if ($o{key}) {
            _foxgov_ok('bundle sign', 'bundle', 'sign', $dir,
                '--key', $o{key}, @kid);
        } else {
            # still make sure it compiles, as build would
            my $tmp = _tmpfile(undef, '.tar.gz');
            _foxgov_ok('bundle build', 'bundle', 'build', $dir, '-o', $tmp);
            unlink $tmp;
        }
        return $dir;
    }

    # compile => 0: whatever the files say, signed by hand in OPA's format
    my @files = grep { $_ ne '.signatures.json' } _files_under($dir, '');
    if ($o{key}) {
        my $payload = { files => [ map { { name => $_,
            hash => sha256_hex(_slurp("$dir/$_")),
            algorithm => 'SHA-256' } } @files ] };
        my $ki = key_info($o{key});
        my $jws = sign_jwt(key => $o{key},
            header => { alg => $ki->{alg}, kid => $o{kid} // $ki->{kid},
                        typ => undef },
            claims => $payload);
        _spew("$dir/.signatures.json",
            $JSON->encode({ signatures => [$jws] }));
        push @files, '.signatures.json';
    }
    if ($o{tar}) {
        my ($rc, undef, $err) = _run('tar', '--sort=name', '--mtime=@0',
            '--owner=0', '--group=0', '--numeric-owner', '-czf', $out,
            '-C', $dir, sort @files);
        die "tar failed: $err\n" if $rc != 0;
        return $out;
    }
    return $dir;
}

1;

__END__

=head1 NAME

FoxGov::Test::Fixtures - keys, tokens, bundles and approvals for foxgov's
integration tests

=head1 SYNOPSIS

    use FoxGov::Test::Fixtures qw(:all);

    my $d = $t->testdir();
    my ($pem, $jwks) = keygen("$d/keys", 'caller', 'EdDSA');
    my $tok = mint_token(key => $pem, tenant => 'acme',
                         caps => ['model:gpt-4o*']);
    my $bundle = build_bundle(dir => "$d/bundle", key => $bpem, tar => 1,
        policy => { default => 'DENY', rules => [ { id => 'all',
            match => {}, decision => 'ALLOW' } ] });
    my $approval = approve(key => $apem, request => $err->{approval});
    my $bad = forge_token('expired', key => $pem, tenant => 'acme');

=head1 FUNCTIONS

All die with the CLI's message on failure.  Everything that runs a
command has a deadline (30 s).

=over

=item foxgov_bin() - C<$FOXGOV_CLI> or build/bin/foxgov.

=item run_foxgov([{stdin =E<gt> ..., timeout =E<gt> S}], @args) - (exit
code, stdout, stderr); -1 if killed at the deadline.

=item keygen($dir, $kid, $alg = 'EdDSA') - foxgov keygen; returns
C<($pem_path, $jwks_path)> (C<$dir/$kid.pem>, C<$dir/$kid.jwks.json>).

=item mint_token(key, tenant = 't1', sub = 'agent-1', caps =
['model:*','tool:*'], ttl = '1h', workspace = 'ws1', environment =
'prod', acr, kid, iss) - foxgov token mint; the token.

=item approve(key, request =E<gt> {approval object of the 428 body}, approver
= 'alice', ttl = '15m', kid) - foxgov approve; the approval token.

=item build_bundle(dir, policy, prices, revision = 'r1', key, kid, tar =
0, out = "$dir.tar.gz", manifest, tests, files, compile = 1) - writes
C<.manifest> (C<{revision, roots:["foxgov"]}> merged with a C<manifest>
hashref; a string is written as is), C<policy.json>, C<prices.json>,
C<tests/NAME.json>, extra C<files> into the empty or new C<dir>. policy,
prices, manifest and tests are hashrefs (written as JSON) or raw strings.
With compile =E<gt> 1 (default) the CLI compiles and signs it (C<bundle
sign> for a directory, C<bundle build> for C<tar =E<gt> 1>; unsigned
without C<key>). With compile =E<gt> 0 the CLI is bypassed: the files are
signed as they are, in OPA's format, by sign_jwt (for signed bundles
whose policy does not compile), and packed with tar. Returns the
directory or the archive.

=item write_hs256_jwks($path, kid =E<gt> 'hs-1', secret =E<gt> BYTES) -
an oct JWKS; returns C<($path, $secret)>.

=item sign_jwt(key =E<gt> PEM | secret =E<gt> BYTES, claims =E<gt> {} |
payload =E<gt> 'raw', header =E<gt> {} | 'raw', alg, kid) - a compact JWS
signed by openssl (EdDSA, ES256 as JOSE r||s, RS256) or HMAC (HS256).
alg/kid default from the key; C<header> members override (set one to
undef to drop it), so the header may lie.

=item verify_jwt($token, key =E<gt> PEM | secret =E<gt> BYTES) - (header,
claims) when the signature verifies by openssl, else ().  No claim
checks.

=item decode_jwt($token) - (header, claims, signature bytes), undef for
parts that do not decode.

=item token_claims(%mint_token_options, ttl =E<gt> seconds, now =E<gt>
epoch, extra =E<gt> {claim =E<gt> value|undef}) - the claims token mint
writes.

=item forge_token($kind, key =E<gt> PEM, %token_claims_options) - a token
to be refused, C<$kind> in C<@FORGE_KINDS>:
C<alg_none> (C<"alg":"none">, empty signature: C<h.p.>);
C<alg_confusion> (HS256 whose secret is the public key: its PEM text, or
with secret_from =E<gt> 'jwk' the JWK's canonical JSON, 'raw' the raw
C<x>/C<n> bytes; the kid of that key);
C<expired> (iat now-2h, exp now-1h); C<future_nbf> (nbf now+1h, exp now+2h);
C<future_iat> (iat now+1h); C<bad_signature> (a signature character
flipped); C<unknown_kid> (signed by the key, C<"kid":"no-such-kid">);
C<truncated> (a good token's header and half its payload); C<oversized> (a good token
of about C<size> bytes, default 16500: over the 16 KiB bound);
C<no_exp>; C<bad_tenant> (C<ACME/../t2>); C<crit> (a C<crit> header);
C<padded> (payload base64url with C<=> padding, signed as it stands).
C<expired>, C<future_nbf>, C<future_iat>, C<unknown_kid>, C<oversized>,
C<no_exp>, C<bad_tenant> and C<crit> carry a good signature by the key:
only the one flaw makes them bad.

=item key_info($path, $kid), public_pem($pem), b64url, b64url_decode.

=back

=cut
