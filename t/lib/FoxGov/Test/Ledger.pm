package FoxGov::Test::Ledger;

# Ledger files for foxgov's tests, written here from canonical records
# with the chain computed in Perl (Digest::SHA), independently of core/:
# the file backend's format of docs/ledger.md.  Records come from the
# vectors (vectors/records/<Type>/valid-<flow>.canon), from the CLI
# (foxgov decide), or are made in a test from JSON and canonicalized by
# `foxgov canon`.  The POD at the end lists the functions.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256 sha256_hex);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP ();

use FoxGov::Test::Fixtures qw(run_foxgov);

our @EXPORT_OK = qw(
    ledger_genesis ledger_lines ledger_text write_ledger
    vector_record canon_record envelope_hash record_data validate_record
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $ROOT = abs_path(File::Spec->catdir(dirname(__FILE__),
    File::Spec->updir(), File::Spec->updir(), File::Spec->updir(),
    File::Spec->updir()));

my $JSON = JSON::PP->new->utf8->canonical;

sub _slurp {
    my ($p) = @_;
    open my $f, '<:raw', $p or die "$p: $!\n";
    local $/;
    my $c = <$f>;
    close $f;
    return $c // '';
}

# chain_0 of a tenant: sha256("foxgov-ledger-v1:" || tenant_id), raw.
sub ledger_genesis {
    my ($tenant) = @_;
    return sha256("foxgov-ledger-v1:$tenant");
}

# The lines (without "\n") of a ledger of @records (canonical bytes) for
# $tenant: seq from 1, each chain from the one before.
sub ledger_lines {
    my ($tenant, @records) = @_;
    my $chain = ledger_genesis($tenant);
    my ($seq, @lines) = (0);

    for my $r (@records) {
        my $h = sha256($r);
        $chain = sha256($chain . $h);
        $seq++;
        push @lines, sprintf('{"chain":"%s","envelope_hash":"%s",'
                             . '"record":%s,"seq":%d}', unpack('H*', $chain),
                             unpack('H*', $h), $r, $seq);
    }

    return @lines;
}

# The whole file: every line with its "\n".
sub ledger_text {
    my ($tenant, @records) = @_;
    return join('', map { "$_\n" } ledger_lines($tenant, @records));
}

# Write the ledger of @records for $tenant to $path; returns $path.
sub write_ledger {
    my ($path, $tenant, @records) = @_;
    open my $f, '>:raw', $path or die "$path: $!\n";
    print {$f} ledger_text($tenant, @records);
    close $f or die "$path: $!\n";
    return $path;
}

# The canonical bytes of a record vector, e.g.
# vector_record('ModelCallRecord', 'openai-chat-completion').
sub vector_record {
    my ($type, $flow) = @_;
    my $c = _slurp("$ROOT/vectors/records/$type/valid-$flow.canon");
    $c =~ s/\n\z//;
    return $c;
}

# The canonical bytes (foxgov canon) of a record given as a hashref or as
# JSON text.  Dies with the CLI's message when it is refused.
sub canon_record {
    my ($rec) = @_;
    my $text = ref $rec ? $JSON->encode($rec) : $rec;
    my ($rc, $out, $err) = run_foxgov({ stdin => $text }, 'canon');
    die "foxgov canon failed ($rc): $err\n" if $rc != 0;
    return $out;
}

# envelope_hash of canonical bytes: lowercase hex sha256.
sub envelope_hash {
    my ($canon) = @_;
    return sha256_hex($canon);
}

# The record as Perl data (a hashref).
sub record_data {
    my ($canon) = @_;
    return $JSON->decode($canon);
}

# (exit code, stderr) of `foxgov validate record` on canonical bytes.
sub validate_record {
    my ($canon) = @_;
    my ($rc, undef, $err) = run_foxgov({ stdin => $canon }, 'validate',
                                       'record', '-');
    return ($rc, $err);
}

1;

__END__

=head1 NAME

FoxGov::Test::Ledger - ledger files for foxgov's tests

=head1 SYNOPSIS

    use FoxGov::Test::Ledger qw(:all);

    my $auth = vector_record('AuthContext', 'openai-chat-completion');
    my $rec = record_data(vector_record('ModelCallRecord',
                                        'openai-chat-completion'));
    $rec->{labels} = { ticket => 'INC1' };
    my $call = canon_record($rec);
    write_ledger("$dir/acme.ledger", 'acme', $auth, $decision, $call);

=head1 FUNCTIONS

Records are always their canonical bytes (what the gateway sends and the
ledger holds); nothing here checks them, so a test can write a ledger
that must be refused.

=over

=item ledger_genesis($tenant) - chain_0, raw 32 bytes.

=item ledger_lines($tenant, @records) - the lines, without "\n":
C<{"chain":..,"envelope_hash":..,"record":..,"seq":N}>, seq from 1.

=item ledger_text($tenant, @records) - the file's bytes (each line
ends with "\n").

=item write_ledger($path, $tenant, @records) - writes it; returns $path.

=item vector_record($type, $flow) - the bytes of
F<vectors/records/$type/valid-$flow.canon>.

=item canon_record($hashref | $json_text) - canonical bytes by C<foxgov
canon>; dies when refused.

=item envelope_hash($canon) - lowercase hex sha256.

=item record_data($canon) - the record decoded (JSON::PP).

=item validate_record($canon) - C<(exit code, stderr)> of C<foxgov
validate record>.

=back

=cut
