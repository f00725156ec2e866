package FoxGov::Test::Evidence;

# Evidence records as the gateway writes them, in any number: the record
# vectors of one call (vectors/records/*/valid-openai-chat-completion.canon:
# AuthContext, PolicyDecisionRecord, ModelCallRecord) made into $n distinct
# calls by giving each its own execution id, trace id and ticket label,
# for a tenant, with the links (auth_context_sha256,
# policy_decision_sha256) recomputed.  The vectors are canonical and only
# string values of the same kind are replaced, so the records stay
# canonical and schema-valid; tests check that with foxgov-ledgerd and
# foxgov verify, independently of this code.
#
# feed() writes them into a tenant's stream with redis-cli --pipe, as the
# gateway's XADD would (fields t, h, r, o).

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use Exporter qw(import);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempfile);

our @EXPORT_OK = qw(flows feed resp_xadd record_hash);

# the repository: four levels above t/lib/FoxGov/Test/Evidence.pm
my $TOP = dirname(dirname(dirname(dirname(dirname(abs_path(__FILE__))))));

my %TEMPLATE;

sub _template {
    my ($type) = @_;
    return $TEMPLATE{$type} //= do {
        my $p = "$TOP/vectors/records/$type/valid-openai-chat-completion.canon";
        open my $fh, '<:raw', $p or die "$p: $!";
        local $/;
        my $s = <$fh>;
        $s =~ s/\n\z//;
        $s;
    };
}

sub record_hash { return sha256_hex($_[0]) }

# The execution id of call $i (a UUIDv7: version 7, variant 10).
sub _execution_id {
    my ($i, $salt) = @_;
    my $h = sprintf('%012x', $i);
    my $s = substr(sha256_hex("$salt:$i"), 0, 20);
    return sprintf('01973511-%s-7%s-8%s-%s', substr($s, 0, 4),
                   substr($s, 4, 3), substr($s, 7, 3), $h);
}

# flows($tenant, $n, salt => S, ticket => sub { $i -> label }) ->
#   ([type, hash, record], ...) in the order the gateway writes them.
sub flows {
    my ($tenant, $n, %o) = @_;
    my $salt = $o{salt} // 'flows';
    my ($ac, $pd, $mc) = map { _template($_) }
        qw(AuthContext PolicyDecisionRecord ModelCallRecord);
    my $tx = '01973511-b5a2-7e11-abeb-c995a502243a';
    my $tr = '7c1e9a4f2b6d4e8f9a0b3c5d7e9f1a2b';
    my @out;
    for my $i (1 .. $n) {
        my $x = _execution_id($i, $salt);
        my $t = substr(sha256_hex("trace:$salt:$i"), 0, 32);
        my $ticket = $o{ticket} ? $o{ticket}->($i) : 'INC0012345';
        my @r;
        for my $tmpl ($ac, $pd, $mc) {
            my $r = $tmpl;
            $r =~ s/\Q$tx\E/$x/g;
            $r =~ s/\Q$tr\E/$t/g;
            $r =~ s/"tenant_id":"acme"/"tenant_id":"$tenant"/g;
            $r =~ s/"ticket":"INC0012345"/"ticket":"$ticket"/g;
            push @r, $r;
        }
        $r[1] =~ s/("auth_context_sha256":")[0-9a-f]{64}/$1 . sha256_hex($r[0])/e;
        $r[2] =~ s/("policy_decision_sha256":")[0-9a-f]{64}/$1 . sha256_hex($r[1])/e;
        push @out, ['AuthContext', sha256_hex($r[0]), $r[0]],
                   ['PolicyDecisionRecord', sha256_hex($r[1]), $r[1]],
                   ['ModelCallRecord', sha256_hex($r[2]), $r[2]];
    }
    return @out;
}

sub _bulk { return '$' . length($_[0]) . "\r\n$_[0]\r\n" }

# The RESP of XADD foxgov:ev:{tenant} * t .. h .. r .. o {} for each
# [type, hash, record] (fields given as they are, so a test can spoil one).
sub resp_xadd {
    my ($tenant, @recs) = @_;
    my $key = "foxgov:ev:{$tenant}";
    my $s = '';
    for my $x (@recs) {
        my @a = ('XADD', $key, '*', 't', $x->[0], 'h', $x->[1], 'r', $x->[2],
                 'o', '{}');
        $s .= '*' . scalar(@a) . "\r\n" . join('', map { _bulk($_) } @a);
    }
    return $s;
}

# XADD the records into the tenant's stream of the Redis at $redis (a
# FoxGov::Test::Redis), through redis-cli --pipe.
sub feed {
    my ($redis, $tenant, @recs) = @_;
    my ($fh, $path) = tempfile('foxgov-feed-XXXXXXXX', TMPDIR => 1,
                               UNLINK => 1);
    binmode $fh;
    # a few thousand commands a write, so memory stays small
    while (my @chunk = splice(@recs, 0, 3000)) {
        print $fh resp_xadd($tenant, @chunk);
    }
    close $fh;
    my $out = `redis-cli -h 127.0.0.1 -p ${\ $redis->port} --pipe < $path 2>&1`;
    die "redis-cli --pipe: $out" if $? != 0 || $out !~ /errors: 0,/;
    return $out;
}

1;
