package FoxGov::Test::ConfExample;

# The example configurations we ship (conf/, docker/), moved so a test can
# run them as they are: their system paths onto the test's directories,
# their listen ports and upstream servers onto free loopback ports, and the
# check that no system path is left.  The tests that use it:
# t/conf-example.t, t/conf-sidecar.t, t/conf-fleet.t, t/conf-logrotate.t
# and t/docker.t.
#
# The repository and the test's directories may themselves be under /tmp
# or /var (a clone in mktemp -d, in /var/tmp): so the system paths are
# mapped first and in one pass, before anything that writes such a path
# (load_module, pid, the temp paths), and the check leaves those
# directories out.  The POD at the end says how to use it.

use strict;
use warnings;

use Exporter qw(import);

our @EXPORT_OK = qw(move_conf map_paths paths_left directives);

# Where a system path starts: not inside a longer path or name.
my $START = qr{(?<![\w/.-])};

# The directories a moved example must no longer name: ours, and those a
# test must not write to.  (/etc/ssl/certs, read as it is, may stay.)
my $SYSTEM = qr{^/(?:etc/foxgov|etc/nginx|var|run|tmp)(?:/|\z)};

# $text without its # comments.
sub directives {
    my ($text) = @_;
    $text =~ s/#[^\n]*//g;
    return $text;
}

# $text with each path of %$map (a system directory or file, say
# '/etc/foxgov', no trailing /) replaced by its place in the test, where a
# path starts with it.  One pass: a path already replaced, which may be
# under /tmp itself, is never looked at again.
sub map_paths {
    my ($text, $map) = @_;
    my $any = join '|', map { quotemeta }
        sort { length $b <=> length $a } keys %$map;
    $text =~ s{$START($any)(?![\w.-])}{$map->{$1}}g;
    return $text;
}

# The system paths left in $text's directives, but for those under @own
# (the repository, the module, the test's directories: a path the test
# gave, wherever it is).  An empty list when none is left.
sub paths_left {
    my ($text, @own) = @_;
    s{/+\z}{} for @own;
    my @paths = directives($text) =~ m{$START(/[^\s;"'(){}]*)}g;
    return grep { $_ =~ $SYSTEM && !_under($_, @own) } @paths;
}

sub _under {
    my ($path, @dirs) = @_;
    return scalar grep { $path eq $_ || index($path, "$_/") == 0 } @dirs;
}

# $text, an example nginx.conf (or an upstreams file), moved for a test.
# What %how names is moved, the paths first:
#   paths      => { system path => its place }, as map_paths
#   module     => the module load_module loads
#   harness    => a FoxGov::Test::Nginx to run it: see _for_harness
#   redis      => the address foxgov_redis names
#   schemas    => the directory relative schema= paths are read from
#   plain_http => 1: proxy_pass http:// where it said https://
#   listen     => [ports]: each listen, in order, on 127.0.0.1 (dies when
#                 there are more listens than ports: nothing may be left
#                 on the example's own port)
#   upstreams  => sub { my ($i, $host, $port) = @_; ... a port }: each
#                 upstream server on 127.0.0.1 (nginx -t resolves names,
#                 and nothing here may leave the machine)
sub move_conf {
    my ($text, %how) = @_;
    $text = map_paths($text, $how{paths}) if $how{paths};
    $text =~ s{^load_module \S+;}{load_module $how{module};}m
        if $how{module};
    $text = _for_harness($text, $how{harness}) if $how{harness};
    $text =~ s{(foxgov_redis\s+)\S+}{$1$how{redis}} if $how{redis};
    $text =~ s{schema=(?!/)}{schema=$how{schemas}/}g if $how{schemas};
    $text =~ s{proxy_pass(\s+)https://}{proxy_pass${1}http://}g
        if $how{plain_http};
    $text = _listen($text, $how{listen}) if $how{listen};
    $text = _upstreams($text, $how{upstreams}) if $how{upstreams};
    return $text;
}

# As the harness runs nginx: in the foreground (it waits for the pid
# file), the pid file and the temp paths in its directory, and no user
# line unless root (only root may switch users).
sub _for_harness {
    my ($text, $t) = @_;
    my $d = $t->testdir();
    $text =~ s{^(load_module \S+;\n)}{${1}daemon off;\nmaster_process on;\n}m;
    $text =~ s{^pid \S+;}{pid $d/nginx.pid;}m;
    $text =~ s{^user \S+;\n}{}m unless $> == 0;
    my $temp = join '', map { "    ${_}_temp_path $d/${_}_temp;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);
    $text =~ s#^http \{\n#http {\n$temp#m;
    return $text;
}

sub _listen {
    my ($text, $ports) = @_;
    my @free = @$ports;
    $text =~ s{^(\s*listen\s+)(?:[\d.]+:)?(\d+)}
              {$1 . '127.0.0.1:' . (shift(@free)
                   // die "listen ...:$2: no port given for it\n")}gme;
    return $text;
}

sub _upstreams {
    my ($text, $port_of) = @_;
    my $i = 0;
    $text =~ s{^(\s*server\s+)([a-z0-9.-]+):(\d+);}
              {$1 . '127.0.0.1:' . $port_of->($i++, $2, $3) . ';'}gme;
    return $text;
}

1;

__END__

=head1 NAME

FoxGov::Test::ConfExample - an example configuration moved onto a test's
directories and ports, and what system path is left in it

=head1 SYNOPSIS

    use FoxGov::Test::ConfExample qw(move_conf map_paths paths_left
                                     directives);

    my $moved = move_conf(slurp("$top/conf/nginx.conf"),
        paths     => { '/etc/foxgov'     => $etc,
                       '/var/log/foxgov' => "$d/logs" },
        module    => module_path(),
        harness   => $t,                        # a FoxGov::Test::Nginx
        redis     => $redis->addr,
        schemas   => "$top/conf",
        listen    => [ $t->port(8080), $t->port(8081) ],
        upstreams => sub { $t->port(9000 + $_[0]) });
    is_deeply([ paths_left($moved, $top, $d, module_path()) ], [],
              'no system path left');

=head1 FUNCTIONS

=over

=item move_conf($text, %how)

The example with what C<%how> names moved: C<paths> first (as
C<map_paths>), then C<load_module> (C<module>), the harness's settings
(C<harness>: C<daemon off>, C<master_process on>, the pid file and the
temp paths in its directory, no C<user> line unless root), C<foxgov_redis>
(C<redis>), relative C<schema=> paths (C<schemas>), C<proxy_pass https://>
to C<http://> (C<plain_http>), each C<listen> in order on 127.0.0.1 and
the next port of C<listen> (it dies when a listen has none), each upstream
C<server host:port> on 127.0.0.1 and the port C<upstreams> returns for
C<($index, $host, $port)>.  Anything not named is left as it is, so an
upstreams file or a foxgov-ledgerd config can be moved too.

=item map_paths($text, { system path => its place })

Each system path (a directory or a file, no trailing C</>) replaced
where a path starts with it, in one pass.

=item paths_left($text, @own)

The paths under C</etc/foxgov>, C</etc/nginx>, C</var>, C</run> and
C</tmp> left in the directives (comments are not read), but for those
under C<@own>: the repository, the module and the test's directories.
An empty list when none is left.

=item directives($text)

C<$text> without its C<#> comments.

=back

=cut
