#!/usr/bin/perl

# docker/: the images and the sidecar compose stack, checked without a
# Docker engine.
#
# Static: docker/Dockerfile's base is Debian 12 pinned by tag; its build
# stage runs the CI's own build steps (lua-free-scripts/test:
# install-deps, then make -j2 all), with the same scripts, copied in
# before they run, and no apt-get install of its own; the runtime stages
# install only install-deps' packages and the library packages
# docker/runtime-packages derives in the build; every COPY source is in
# the build context (honouring .dockerignore), every COPY --from=build
# path is one `make install` makes or the build writes; the runtime
# images end as a non-root user; .dockerignore keeps out .git, build/,
# node_modules and the secrets, and leaves in every file the build reads.
# docker/compose.yaml (and compose.demo.yaml) parse, name app, gateway,
# redis, ledgerd and postgres, put app and redis in the gateway's network
# namespace, mount files that exist, build targets that exist, keep
# credentials in secrets (never in the environment or an URI), and
# agree with docker/nginx.conf, redis.conf and foxgov-ledgerd.conf on
# addresses.  Each of these checks is shown to fail on a broken copy of
# the files in a temp dir.
#
# For real: docker/gen-secrets and docker/foxgov-init make the secrets,
# keys, bundle and token; the gateway's file system is laid out from the
# Dockerfile's COPY lines in a temp root; `nginx -t` accepts
# docker/nginx.conf with the real module, with the real providers'
# upstreams and with the demo's; Redis runs from docker/redis-start with
# docker/redis.conf (password required, appendfsync always, noeviction);
# PostgreSQL gets foxgov-ledgerd's role from docker/postgres-init.sh and
# password authentication; nginx runs the config, answers the
# healthcheck (docker/healthcheck), forwards governed calls to the
# mocks with the secrets as credentials and writes their evidence to
# that Redis; foxgov-ledgerd, started by docker/ledgerd-entrypoint with
# docker/foxgov-ledgerd.conf, appends it to PostgreSQL with the password
# from the secret, and the ledger verifies.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Cwd qw(abs_path);
use CPAN::Meta::YAML;
use File::Basename qw(dirname basename);
use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::ConfExample qw(move_conf map_paths paths_left);
use FoxGov::Test::Fixtures qw(free_port);

my $top = abs_path("$FindBin::Bin/..");

my $tmp = tempdir('foxgov-docker-XXXXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
chmod 0755, $tmp;
diag("keeping $tmp") if $ENV{FOXGOV_TEST_KEEP};

sub slurp {
    my ($p) = @_;
    open my $f, '<:raw', $p or die "$p: $!";
    local $/;
    return scalar <$f>;
}

sub spew {
    my ($p, $text) = @_;
    make_path(dirname($p));
    open my $f, '>:raw', $p or die "$p: $!";
    print {$f} $text;
    close $f or die "$p: $!";
}

# Run a command: (exit status, stdout+stderr).  %env is added to the
# environment of the command only.
sub run_cmd {
    my ($env, @cmd) = @_;
    my $pid = open(my $fh, '-|');
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        @ENV{keys %$env} = values %$env;
        open STDERR, '>&', \*STDOUT or die;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# =================================================================
# Parsing

# docker/Dockerfile: instructions with their stage.  Comment lines are
# dropped (also inside a continued instruction, as Docker does), and
# continued lines joined.
sub parse_dockerfile {
    my ($text) = @_;
    my (@inst, %global_arg, @stages);
    my $stage;
    my $cur = '';
    my $n = 0;
    my $start;
    for my $line (split /\n/, $text) {
        $n++;
        next if $line =~ /^\s*#/;
        next if $cur eq '' && $line =~ /^\s*$/;
        $start //= $n;
        if ($line =~ s/\\\s*$//) {
            $cur .= "$line ";
            next;
        }
        $cur .= $line;
        my ($kw, $rest) = $cur =~ /^\s*(\w+)\s*(.*?)\s*$/s;
        $cur = '';
        my $at = $start;
        undef $start;
        next unless defined $kw;
        $kw = uc $kw;
        $rest =~ s/\s+/ /g;
        if ($kw eq 'FROM') {
            my ($image, $name) = $rest =~ /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i;
            $stage = { name => $name // '', image => $image, line => $at,
                       arg => {} };
            push @stages, $stage;
        }
        if ($kw eq 'ARG' && !$stage) {
            my ($k, $v) = $rest =~ /^(\w+)(?:=(\S*))?/;
            $global_arg{$k} = $v;
        }
        my %flags;
        while ($rest =~ s/^--(\w[\w-]*)=(\S+)\s*//) {
            $flags{$1} = $2;
        }
        push @inst, { kw => $kw, args => $rest, flags => \%flags,
                      stage => $stage, line => $at };
    }
    # image references with ${ARG} resolved from the global ARGs
    for my $s (@stages) {
        (my $img = $s->{image}) =~ s/\$\{?(\w+)\}?/$global_arg{$1} \/\/ ''/ge;
        $s->{resolved} = $img;
    }
    return { inst => \@inst, stages => \@stages, arg => \%global_arg };
}

sub stage_named {
    my ($df, $name) = @_;
    my ($s) = grep { $_->{name} eq $name } @{ $df->{stages} };
    return $s;
}

sub stage_inst {
    my ($df, $stage, $kw) = @_;
    return grep { $_->{stage} && $_->{stage} == $stage
                  && (!$kw || $_->{kw} eq $kw) } @{ $df->{inst} };
}

# the stages a stage is built on, itself first
sub stage_chain {
    my ($df, $s) = @_;
    my @chain;
    while ($s) {
        push @chain, $s;
        $s = stage_named($df, $s->{image});
    }
    return @chain;
}

# A RUN's shell commands, split at && ; and newlines, whitespace
# normalized.
sub run_commands {
    my ($args) = @_;
    return grep { length } map { s/^\s+|\s+$//gr =~ s/\s+/ /gr }
        split /&&|;|\|\|/, $args;
}

# The commands lua-free-scripts/test runs at its top level: "sh
# lua-free-scripts/..." and "make ..." lines.
sub ci_commands {
    my ($text) = @_;
    my @c;
    for my $l (split /\n/, $text) {
        next if $l =~ /^\s*#/;
        push @c, $1 =~ s/\s+/ /gr
            if $l =~ /^((?:sh|\.)\s+lua-free-scripts\/\S+.*?|make\b.*?)\s*$/;
    }
    return @c;
}

# install-deps' package list (PACKAGES="..." and PACKAGES="$PACKAGES ...")
sub install_deps_packages {
    my ($text) = @_;
    my %p;
    while ($text =~ /^\s*PACKAGES="([^"]*)"/mg) {
        $p{$_} = 1 for grep { !/^\$/ } split ' ', $1;
    }
    return \%p;
}

# .dockerignore in Docker's semantics (moby/patternmatcher): Go
# filepath.Match patterns on cleaned paths relative to the context,
# "**" any number of directories, "!" re-includes, the last matching
# pattern wins, and a path is excluded when it or a parent directory is.
sub parse_dockerignore {
    my ($text) = @_;
    my @pat;
    for my $l (split /\n/, $text // '') {
        $l =~ s/^\s+|\s+$//g;
        next if $l eq '' || $l =~ /^#/;
        my $neg = $l =~ s/^!//;
        $l =~ s{^/+}{};
        $l =~ s{/+$}{};
        $l =~ s{/\./}{/}g;
        $l =~ s{^\./}{};
        my $re = '';
        my @c = split //, $l;
        for (my $i = 0; $i < @c; $i++) {
            my $ch = $c[$i];
            if ($ch eq '*') {
                if ($i + 1 < @c && $c[$i + 1] eq '*') {
                    $i++;
                    if ($i + 1 < @c && $c[$i + 1] eq '/') {
                        $i++;
                        $re .= '(?:.*/)?';
                    } else {
                        $re .= '.*';
                    }
                } else {
                    $re .= '[^/]*';
                }
            } elsif ($ch eq '?') {
                $re .= '[^/]';
            } elsif ($ch eq '[') {
                my $j = index($l, ']', $i);
                $re .= substr($l, $i, $j - $i + 1);
                $i = $j;
            } elsif ($ch eq '\\' && $i + 1 < @c) {
                $re .= quotemeta $c[++$i];
            } else {
                $re .= quotemeta $ch;
            }
        }
        push @pat, { neg => $neg, re => qr/^$re\z/, text => $l };
    }
    return \@pat;
}

sub ignored {
    my ($pats, $path) = @_;
    $path =~ s{^\./}{};
    my @parts = split m{/}, $path;
    my $matched = 0;
    for my $p (@$pats) {
        next if $p->{neg} && !$matched;
        my $m = 0;
        for my $k (1 .. @parts) {
            if (join('/', @parts[0 .. $k - 1]) =~ $p->{re}) { $m = 1; last }
        }
        $matched = !$p->{neg} if $m;
    }
    return $matched;
}

# The files of a tree: git's list (tracked and new, less what git
# ignores) in the repository, every file in a copy.
sub files_of {
    my ($root) = @_;
    if (-e "$root/.git") {           # a directory, or a worktree's file
        my ($rc, $out) = run_cmd({}, 'git', '-C', $root, 'ls-files', '-co',
                                 '--exclude-standard');
        die "git ls-files: $out" if $rc;
        return [ grep { -f "$root/$_" } split /\n/, $out ];
    }
    my @f;
    find({ no_chdir => 1, wanted => sub {
        push @f, substr($File::Find::name, length($root) + 1) if -f $_;
    } }, $root);
    return \@f;
}

sub read_yaml {
    my ($p) = @_;
    my $y = eval { CPAN::Meta::YAML->read($p) };
    return (undef, ($@ || 'not a mapping') =~ s/\s+at \S+ line \d+.*//sr)
        unless $y && ref $y->[0] eq 'HASH';
    return ($y->[0], undef);
}

# "key value" lines of a foxgov-ledgerd --config file
sub ledgerd_options {
    my ($text) = @_;
    my @o;
    for my $l (split /\n/, $text) {
        $l =~ s/#.*//;
        push @o, [$1, $2 // ''] if $l =~ /^\s*(\S+)(?:\s+(.*?))?\s*$/;
    }
    return @o;
}

sub ledgerd_option {
    my ($text, $name) = @_;
    my @v = map { $_->[1] } grep { $_->[0] eq $name } ledgerd_options($text);
    return $v[-1];
}

# =================================================================
# The checks: each returns its problems (an empty list: fine)

# The base image: Debian 12, pinned by a point-release or dated tag.
sub check_base {
    my ($root) = @_;
    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my @p;
    my %names = map { $_->{name} => 1 } @{ $df->{stages} };
    for my $s (@{ $df->{stages} }) {
        next if $names{ $s->{image} };
        push @p, "FROM $s->{image} (line $s->{line}) is $s->{resolved}, "
            . 'not debian:12.N[-slim] or debian:bookworm-YYYYMMDD[-slim]'
            unless $s->{resolved} =~
                /^debian:(?:12\.\d+|bookworm-\d{8})(?:-slim)?\z/;
    }
    push @p, 'no FROM' unless @{ $df->{stages} };
    return @p;
}

# Stages, users, healthcheck.
sub check_stages {
    my ($root) = @_;
    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my @p;
    for my $name (qw(build gateway ledgerd)) {
        push @p, "no stage $name" unless stage_named($df, $name);
    }
    for my $name (qw(gateway ledgerd demo)) {
        my $s = stage_named($df, $name) or next;
        my $user;
        for my $c (stage_chain($df, $s)) {
            my @u = stage_inst($df, $c, 'USER');
            if (@u) { $user = $u[-1]{args}; last }
        }
        push @p, "stage $name runs as root"
            if !defined $user || $user =~ /^(?:root|0)(?::|\z)/;
    }
    if (my $g = stage_named($df, 'gateway')) {
        push @p, 'the gateway has no HEALTHCHECK'
            unless grep { $_->{args} =~ /^CMD / }
                   map { stage_inst($df, $_, 'HEALTHCHECK') }
                   stage_chain($df, $g);
    }
    return @p;
}

# The build stage's steps are the CI's, with the CI's scripts, in the
# CI's order; every `sh SCRIPT` a RUN runs exists and was copied in.
sub check_build_steps {
    my ($root) = @_;
    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my @p;
    my $build = stage_named($df, 'build') or return ('no stage build');

    my @ci = grep { !/^make\s.*\btest\b/ }
             ci_commands(slurp("$root/lua-free-scripts/test"));
    push @p, 'lua-free-scripts/test runs no install-deps'
        unless grep { m{^sh lua-free-scripts/install-deps\b} } @ci;
    push @p, 'lua-free-scripts/test runs no make all'
        unless grep { /^make\b.*\ball\b/ } @ci;

    # the build stage's commands, in order, and what was copied before
    my (@cmds, %copied, $all_copied);
    my $workdir = '/';
    for my $i (stage_inst($df, $build)) {
        if ($i->{kw} eq 'WORKDIR') {
            $workdir = $i->{args};
        } elsif ($i->{kw} =~ /^(?:COPY|ADD)$/ && !$i->{flags}{from}) {
            my @a = split ' ', $i->{args};
            my $dest = pop @a;
            for my $src (@a) {
                if ($src eq '.' && $dest =~ m{^\.?/?\z|^\Q$workdir\E/?\z}) {
                    $all_copied = 1;
                } else {
                    (my $d = $dest) =~ s{^\Q$workdir\E/}{};
                    $copied{$d} = 1;
                }
            }
        } elsif ($i->{kw} eq 'RUN') {
            for my $c (run_commands($i->{args})) {
                push @cmds, { cmd => $c, line => $i->{line},
                              copied => { %copied },
                              all => $all_copied };
            }
        }
    }

    # each CI step, in order, as the same command
    my $at = 0;
    for my $step (@ci) {
        my ($k) = grep { $cmds[$_]{cmd} eq $step } 0 .. $#cmds;
        if (!defined $k) {
            push @p, "the build stage does not run `$step` (CI does)";
            next;
        }
        push @p, "`$step` runs out of the CI's order" if $k < $at;
        $at = $k;
    }

    # every script run is there, copied in before it runs
    for my $c (@cmds) {
        next unless $c->{cmd} =~ m{^(?:sh|\.|bash)\s+(\S+)};
        my $script = $1 =~ s{^\./}{}r;
        if (!-f "$root/$script") {
            push @p, "line $c->{line} runs $script, which does not exist";
        } elsif (!$c->{all} && !$c->{copied}{$script}) {
            push @p, "line $c->{line} runs $script before it is copied in";
        }
        push @p, "line $c->{line} runs $script, not the CI's install-deps"
            if $script =~ m{install-deps} && $script ne 'lua-free-scripts/install-deps';
    }

    # make install into the staging directory, after make all
    my ($all) = grep { $cmds[$_]{cmd} =~ /^make\b.*\ball\b/ } 0 .. $#cmds;
    my ($inst) = grep { $cmds[$_]{cmd} =~ /^make\b.*\binstall\b/ } 0 .. $#cmds;
    if (!defined $inst) {
        push @p, 'the build stage runs no make install';
    } else {
        push @p, 'make install runs before make all'
            if defined $all && $inst < $all;
        push @p, 'make install without PREFIX= and DESTDIR='
            unless $cmds[$inst]{cmd} =~ /\bPREFIX=\S+/
                   && $cmds[$inst]{cmd} =~ /\bDESTDIR=\S+/;
    }
    return @p;
}

# Packages: none installed by the build stage but through install-deps;
# the runtime stages install install-deps' packages and the lists
# docker/runtime-packages writes, nothing else.
sub check_packages {
    my ($root) = @_;
    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my $deps = install_deps_packages(slurp("$root/lua-free-scripts/install-deps"));
    my @p;
    push @p, 'no PACKAGES in install-deps' unless %$deps;
    my $build = stage_named($df, 'build');

    # files the build stage writes with docker/runtime-packages
    my %lists;
    for my $i ($build ? stage_inst($df, $build, 'RUN') : ()) {
        for my $c (run_commands($i->{args})) {
            $lists{$1} = 1 if $c =~ m{^sh docker/runtime-packages\b.*>\s*(\S+)\s*$};
        }
    }
    for my $s (@{ $df->{stages} }) {
        my %from_list;      # dest => 1 for COPY --from=build of a list
        for my $i (stage_inst($df, $s)) {
            if ($i->{kw} eq 'COPY' && ($i->{flags}{from} // '') eq 'build') {
                my ($src, $dest) = split ' ', $i->{args};
                $from_list{$dest} = 1 if $lists{$src};
                next;
            }
            next unless $i->{kw} eq 'RUN';
            for my $c (run_commands($i->{args})) {
                next unless $c =~ /\b(?:apt-get|apt|aptitude)\s+(?:\S+\s+)*?install\b(.*)/
                            || $c =~ /\bdpkg\s+(?:-i|--install)\b(.*)/;
                my $rest = $1;
                if ($s == $build) {
                    push @p, "the build stage installs packages itself "
                        . "(line $i->{line}): install-deps' list only";
                    next;
                }
                while ($rest =~ s/\$\(\s*cat\s+(\S+)\s*\)//) {
                    push @p, "line $i->{line}: \$(cat $1) is not a list "
                        . 'docker/runtime-packages wrote'
                        unless $from_list{$1};
                }
                for my $w (split ' ', $rest) {
                    next if $w =~ /^-/;
                    (my $pkg = $w) =~ s/=.*//;
                    push @p, "line $i->{line} installs $pkg, which "
                        . 'install-deps does not' unless $deps->{$pkg};
                }
            }
        }
    }
    return @p;
}

# What `make install PREFIX=/usr DESTDIR=/staging` makes, read from the
# Makefile's install recipe: paths, files and directories.
sub make_install_paths {
    my ($root, $prefix, $destdir) = @_;
    my $mk = slurp("$root/Makefile");
    my %var = (PREFIX => $prefix, DESTDIR => $destdir);
    while ($mk =~ /^([A-Z_]+)\s*:?=\s*(.*?)\s*$/mg) {
        $var{$1} //= $2 unless $1 eq 'PREFIX' || $1 eq 'DESTDIR';
    }
    my ($recipe) = $mk =~ /^install:[^\n]*\n((?:\t[^\n]*\n)+)/m;
    return {} unless $recipe;
    $recipe =~ s/\\\n\s*/ /g;
    my %paths;
    for my $l (split /\n/, $recipe) {
        $l =~ s/^\t//;
        1 while $l =~ s/\$\((\w+)\)/$var{$1} \/\/ ''/e;
        my @w = split ' ', $l;
        next unless @w && $w[0] eq 'install';
        shift @w;
        my $dir = 0;
        my @args;
        while (@w) {
            my $x = shift @w;
            if ($x eq '-d') { $dir = 1 }
            elsif ($x =~ /^-[mog]$/) { shift @w }
            elsif ($x =~ /^-/) { }
            else { push @args, $x }
        }
        if ($dir) {
            $paths{$_} = 'dir' for @args;
            next;
        }
        my $dest = pop @args;
        if ($dest =~ m{/\z} || @args > 1) {
            (my $d = $dest) =~ s{/\z}{};
            $paths{$d} = 'dir';
            $paths{"$d/" . basename($_)} = 'file' for @args;
        } else {
            $paths{$dest} = 'file';
        }
    }
    return \%paths;
}

# COPY sources: in the context (and not ignored), or made by the stage
# they come from.
sub check_copies {
    my ($root) = @_;
    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my $ign = parse_dockerignore(-f "$root/.dockerignore"
                                 ? slurp("$root/.dockerignore") : '');
    my $files = files_of($root);
    my @p;

    my $build = stage_named($df, 'build');
    my ($inst_cmd) = grep { /^make\b.*\binstall\b/ }
        map { run_commands($_->{args}) } stage_inst($df, $build, 'RUN');
    my ($prefix) = ($inst_cmd // '') =~ /\bPREFIX=(\S+)/;
    my ($destdir) = ($inst_cmd // '') =~ /\bDESTDIR=(\S+)/;
    my $installed = make_install_paths($root, $prefix // '/usr/local',
                                       $destdir // '');
    my %written;        # files the build stage's RUNs redirect into
    for my $i (stage_inst($df, $build, 'RUN')) {
        $written{$1} = 1 while $i->{args} =~ />\s*(\/\S+)/g;
    }

    my %seen_stage;
    for my $i (@{ $df->{inst} }) {
        $seen_stage{ $i->{stage}{name} } = 1 if $i->{kw} eq 'FROM';
        next unless $i->{kw} eq 'COPY' || $i->{kw} eq 'ADD';
        my @a = split ' ', $i->{args};
        pop @a;
        my $from = $i->{flags}{from};
        if (defined $from) {
            if (!$seen_stage{$from} || $from eq $i->{stage}{name}) {
                push @p, "line $i->{line}: --from=$from is no earlier stage";
                next;
            }
            next unless $from eq 'build';
            for my $src (@a) {
                next if $installed->{$src} || $written{$src};
                push @p, "line $i->{line}: $src is not made by the build "
                    . 'stage (make install or a RUN)';
            }
            next;
        }
        for my $src (@a) {
            (my $s = $src) =~ s{^\./}{};
            $s =~ s{/\z}{};
            if ($s eq '.') {
                next;
            }
            if (!-e "$root/$s") {
                push @p, "line $i->{line}: COPY source $s does not exist";
                next;
            }
            if (ignored($ign, $s)) {
                push @p, "line $i->{line}: COPY source $s is left out by "
                    . '.dockerignore';
                next;
            }
            if (-d "$root/$s") {
                my @in = grep { m{^\Q$s\E/} } @$files;
                push @p, "line $i->{line}: $s has no file in the context"
                    unless @in;
                push @p, "line $i->{line}: $_ (in $s) is left out by "
                    . '.dockerignore' for grep { ignored($ign, $_) } @in;
            }
        }
    }
    return @p;
}

# .dockerignore keeps out what must stay out and nothing the build reads.
sub check_context {
    my ($root) = @_;
    my $ign = parse_dockerignore(-f "$root/.dockerignore"
                                 ? slurp("$root/.dockerignore") : '');
    my $files = files_of($root);
    my @p;

    for my $out ('.git/config', 'build/bin/foxgov', 'docker/secrets/x',
                 'demo/itsm-triage/node_modules/openai/index.js') {
        push @p, ".dockerignore lets in $out" unless ignored($ign, $out);
    }

    # what make all reads: the Makefile, config, the directories of its
    # wildcards, the files it names; the scripts; the demo and the Perl
    # modules its mock uses
    my $mk = slurp("$root/Makefile");
    my %dirs = ('lua-free-scripts' => 1, 'docker' => 1);
    $dirs{ dirname($1) } = 1 while $mk =~ /\$\(wildcard\s+([^)\s]+)/g;
    my %need = (Makefile => 1, config => 1);
    for my $w ($mk =~ m{(?<![\w\$(/.-])([a-z][\w.-]*/[\w./-]+)}g) {
        $need{$w} = 1 if -f "$root/$w";
    }
    my $df = slurp("$root/docker/Dockerfile");
    if ($df =~ m{\bdemo/itsm-triage\b}) {
        $dirs{'demo/itsm-triage'} = 1;
        my @todo = grep { -f "$root/$_" } 'demo/itsm-triage/mock-upstreams';
        my %done;
        while (my $f = shift @todo) {
            next if $done{$f}++;
            for my $m (slurp("$root/$f") =~ /^\s*use\s+(FoxGov::[\w:]+)/mg) {
                (my $pm = "t/lib/$m.pm") =~ s{::}{/}g;
                $need{$pm} = 1;
                push @todo, $pm if -f "$root/$pm";
            }
        }
    }
    for my $f (@$files) {
        next if $f =~ m{^docker/secrets/};
        my $d = dirname($f);
        $need{$f} = 1 if grep { $d eq $_ || index($d, "$_/") == 0 } keys %dirs;
    }
    push @p, ".dockerignore leaves out $_, which the build reads"
        for grep { ignored($ign, $_) } sort keys %need;
    return @p;
}

# docker/compose.yaml (+ compose.demo.yaml).
sub check_compose {
    my ($root) = @_;
    my @p;
    my ($c, $err) = read_yaml("$root/docker/compose.yaml");
    return ("docker/compose.yaml does not parse: $err") unless $c;
    my ($demo, $err2) = read_yaml("$root/docker/compose.demo.yaml");
    push @p, "docker/compose.demo.yaml does not parse: $err2" unless $demo;

    my $df = parse_dockerfile(slurp("$root/docker/Dockerfile"));
    my %stages = map { $_->{name} => 1 } @{ $df->{stages} };
    my $svc = $c->{services} // {};

    for my $name (qw(app gateway redis ledgerd postgres)) {
        push @p, "no service $name" unless ref $svc->{$name} eq 'HASH';
    }
    return @p if @p;

    for my $name (qw(app redis)) {
        push @p, "$name does not share the gateway's network namespace"
            unless ($svc->{$name}{network_mode} // '') eq 'service:gateway';
    }

    my %declared_vol = %{ $c->{volumes} // {} };
    my %declared_sec = %{ $c->{secrets} // {} };
    for my $file ([ 'docker/compose.yaml', $c ], [ 'docker/compose.demo.yaml', $demo ]) {
        my ($fname, $doc) = @$file;
        next unless $doc;
        for my $name (sort keys %{ $doc->{services} // {} }) {
            my $s = $doc->{services}{$name};
            my $b = $s->{build};
            if (ref $b eq 'HASH') {
                my $ctx = abs_path("$root/docker/" . ($b->{context} // '.'));
                push @p, "$fname: $name builds from $b->{context}, not the "
                    . 'repository root'
                    unless $ctx && $ctx eq abs_path($root);
                push @p, "$fname: ${name}'s dockerfile is not docker/Dockerfile"
                    unless ($b->{dockerfile} // '') eq 'docker/Dockerfile';
                push @p, "$fname: $name builds target "
                    . ($b->{target} // '(none)') . ', no stage of the Dockerfile'
                    unless defined $b->{target} && $stages{ $b->{target} };
            } elsif (defined $s->{image}) {
                push @p, "$fname: ${name}'s image $s->{image} is not pinned"
                    unless $s->{image} =~ /:\d+\.\d+[\w.-]*\z/;
            }
            for my $v (@{ $s->{volumes} // [] }) {
                my ($src) = (ref $v ? $v->{source} : $v) =~ /^([^:]+):/;
                next unless defined $src;
                if ($src =~ m{^[./]}) {
                    push @p, "$fname: $name mounts $src, which does not exist"
                        unless -e "$root/docker/$src";
                } else {
                    push @p, "$fname: $name uses volume $src, not declared"
                        unless exists $declared_vol{$src};
                }
            }
            for my $sec (@{ $s->{secrets} // [] }) {
                my $n = ref $sec ? $sec->{source} : $sec;
                push @p, "$fname: $name uses secret $n, not declared"
                    unless exists $declared_sec{$n};
            }
            my $env = $s->{environment} // {};
            for my $k (ref $env eq 'HASH' ? keys %$env : ()) {
                push @p, "$fname: $name has $k in its environment: use a "
                    . 'secret (a *_FILE)'
                    if $k =~ /PASS|SECRET|TOKEN|KEY/i && $k !~ /_FILE\z/;
            }
        }
    }

    # secrets are files under docker/secrets/ that gen-secrets makes
    my $gen = -f "$root/docker/gen-secrets" ? slurp("$root/docker/gen-secrets") : '';
    for my $n (sort keys %declared_sec) {
        my $f = $declared_sec{$n}{file} // '';
        push @p, "secret $n is not a file under ./secrets/"
            unless $f =~ m{^\./secrets/([\w.-]+)\z};
        push @p, "secret $n is not made by docker/gen-secrets"
            unless $gen =~ /^put $1 /m;
    }

    # the ledger on a volume
    push @p, 'postgres keeps its data on no named volume'
        unless grep { /^[\w-]+:\/var\/lib\/postgresql\/data\z/ }
               @{ $svc->{postgres}{volumes} // [] };

    # addresses: Redis is reached on loopback by the gateway, at the
    # gateway's fixed address by ledgerd; redis.conf binds both
    my $nginx = slurp("$root/docker/nginx.conf");
    my $redis_conf = slurp("$root/docker/redis.conf");
    my $ld = slurp("$root/docker/foxgov-ledgerd.conf");
    my ($port) = $redis_conf =~ /^port\s+(\d+)/m;
    my ($bind) = $redis_conf =~ /^bind\s+(.+?)\s*$/m;
    my %bind = map { $_ => 1 } split ' ', $bind // '';
    my ($gw_redis) = $nginx =~ /^\s*foxgov_redis\s+(\S+?);?(?:\s|$)/m;
    push @p, "nginx.conf's foxgov_redis is "
        . ($gw_redis // 'missing') . ", not 127.0.0.1:" . ($port // '?')
        unless defined $gw_redis && defined $port
               && $gw_redis eq "127.0.0.1:$port";
    push @p, 'redis.conf does not bind 127.0.0.1' unless $bind{'127.0.0.1'};
    my $ld_redis = ledgerd_option($ld, 'redis') // '';
    my ($ip, $ld_port) = $ld_redis =~ /^(\d+\.\d+\.\d+\.\d+):(\d+)\z/;
    if (!$ip) {
        push @p, "foxgov-ledgerd.conf's redis $ld_redis is not an IP:PORT";
    } else {
        my $gw_nets = $svc->{gateway}{networks} // {};
        my ($net) = grep { ref $gw_nets->{$_} eq 'HASH'
                           && ($gw_nets->{$_}{ipv4_address} // '') eq $ip }
                    keys %$gw_nets;
        push @p, "ledgerd's Redis $ip is not the gateway's ipv4_address"
            unless $net;
        push @p, "redis.conf does not bind $ip" unless $bind{$ip};
        push @p, "ledgerd's Redis port $ld_port is not redis.conf's"
            unless defined $port && $ld_port eq $port;
        if ($net) {
            my $ld_nets = $svc->{ledgerd}{networks} // {};
            push @p, "ledgerd is not on the network $net"
                unless exists $ld_nets->{$net};
            my ($subnet) = map { $_->{subnet} }
                @{ $c->{networks}{$net}{ipam}{config} // [] };
            push @p, "$ip is not in $net\'s subnet " . ($subnet // '(none)')
                unless $subnet && in_subnet($ip, $subnet);
        }
    }

    # the ledger: PostgreSQL, no password in the URI, a host on a network
    # ledgerd shares
    my $ledger = ledgerd_option($ld, 'ledger') // '';
    if ($ledger !~ m{^postgresql://([^@/]*)@([^:/]+)(?::\d+)?/\w+\z}) {
        push @p, "foxgov-ledgerd.conf's ledger $ledger is not "
            . 'postgresql://USER@HOST[:PORT]/DB';
    } else {
        my ($user, $host) = ($1, $2);
        push @p, 'the ledger URI holds a password' if $user =~ /:/;
        my %ld_nets = %{ $svc->{ledgerd}{networks} // {} };
        my %pg_nets = %{ $svc->{$host}{networks} // {} };
        push @p, "ledgerd shares no network with $host"
            unless grep { exists $pg_nets{$_} } keys %ld_nets;
    }

    # files named in the configs are mounted or secrets of their service
    my %gw_sec = map { $_ => 1 } @{ $svc->{gateway}{secrets} // [] };
    for my $f ($nginx =~ m{(/run/secrets/[\w.-]+)}g) {
        push @p, "nginx.conf reads $f, not a secret of the gateway"
            unless $gw_sec{ basename($f) };
    }
    my %ld_sec = map { $_ => 1 } @{ $svc->{ledgerd}{secrets} // [] };
    for my $f ($ld =~ m{(/run/secrets/[\w.-]+)}g) {
        push @p, "foxgov-ledgerd.conf reads $f, not a secret of ledgerd"
            unless $ld_sec{ basename($f) };
    }
    return @p;
}

sub in_subnet {
    my ($ip, $cidr) = @_;
    my ($net, $bits) = split m{/}, $cidr;
    my $n = sub { my $x = 0; $x = $x * 256 + $_ for split /\./, $_[0]; $x };
    my $mask = $bits ? (0xffffffff << (32 - $bits)) & 0xffffffff : 0;
    return ($n->($ip) & $mask) == ($n->($net) & $mask);
}

# =================================================================
# The checks on the repository

my %checks = (
    base         => \&check_base,
    stages       => \&check_stages,
    'build steps' => \&check_build_steps,
    packages     => \&check_packages,
    copies       => \&check_copies,
    context      => \&check_context,
    compose      => \&check_compose,
);

for my $name (sort keys %checks) {
    my @p = $checks{$name}->($top);
    ok(!@p, "$name: docker/ agrees") or diag(join "\n", @p);
}

# the CI steps found are the ones expected (the parser is not vacuous)
my @ci = ci_commands(slurp("$top/lua-free-scripts/test"));
ok((grep { $_ eq 'sh lua-free-scripts/install-deps' } @ci)
   && (grep { /^make -j\d+ all\z/ } @ci),
   'lua-free-scripts/test: ' . join(', ', @ci));

my $df = parse_dockerfile(slurp("$top/docker/Dockerfile"));
is(join(' ', map { $_->{name} } @{ $df->{stages} }),
   'build runtime-base gateway ledgerd demo', 'the stages');

# install-deps' list is what check_packages reads
my $deps = install_deps_packages(slurp("$top/lua-free-scripts/install-deps"));
ok($deps->{'nginx-core'} && $deps->{'nginx-dev'} && $deps->{'ca-certificates'}
   && $deps->{nodejs}, 'install-deps lists nginx-core, nginx-dev, '
   . 'ca-certificates, nodejs');

# the module lands where the distribution's nginx loads modules/ from
my $inst = make_install_paths($top, '/usr', '/staging');
ok($inst->{'/staging/usr/lib/nginx/modules/ngx_http_foxgov_module.so'},
   'make install PREFIX=/usr puts the module in /usr/lib/nginx/modules');
SKIP: {
    skip 'no /usr/share/nginx/modules here', 1
        unless -e '/usr/share/nginx/modules';
    is(abs_path('/usr/share/nginx/modules'), '/usr/lib/nginx/modules',
       "Debian's nginx: modules/ (its prefix /usr/share/nginx) is /usr/lib/nginx/modules");
}

# the compose file with a real YAML parser too, when there is one
SKIP: {
    skip 'YAML::XS not installed (libyaml-libyaml-perl)', 1
        unless eval { require YAML::XS; 1 };
    my $y = eval { YAML::XS::LoadFile("$top/docker/compose.yaml") };
    is(join(' ', sort keys %{ $y->{services} // {} }),
       'app gateway init ledgerd postgres redis', 'YAML::XS reads the same services');
}

# =================================================================
# Each check fails on a broken copy

# a copy of what the checks read: the repository's files less .git
sub broken_copy {
    my ($name, %edit) = @_;
    my $root = "$tmp/broken-$name";
    remove_tree($root);
    for my $f (@{ files_of($top) }) {
        next if $f =~ m{^docker/secrets/} || $f =~ m{/node_modules/};
        make_path(dirname("$root/$f"));
        # a hard link (fast); an edited file is unlinked first, so the
        # repository's own is never written
        link("$top/$f", "$root/$f") or copy("$top/$f", "$root/$f")
            or die "copy $f: $!";
    }
    for my $f (keys %edit) {
        my $text = -f "$root/$f" ? slurp("$root/$f") : '';
        my $e = $edit{$f};
        if (ref $e eq 'CODE') {
            local $_ = $text;
            $e->();
            $text = $_;
        } elsif (!defined $e) {
            unlink "$root/$f";
            next;
        } else {
            $text = $e;
        }
        unlink "$root/$f";
        spew("$root/$f", $text);
    }
    return $root;
}

my @broken = (
    [ base => 'base image debian:latest',
      { 'docker/Dockerfile' => sub { s/^ARG DEBIAN_IMAGE=\S+/ARG DEBIAN_IMAGE=debian:latest/m } },
      qr/not debian:12/ ],
    [ base => 'base image debian:bookworm (a moving tag)',
      { 'docker/Dockerfile' => sub { s/^ARG DEBIAN_IMAGE=\S+/ARG DEBIAN_IMAGE=debian:bookworm-slim/m } },
      qr/not debian:12/ ],
    [ stages => 'the gateway without USER',
      { 'docker/Dockerfile' => sub { s/(FROM runtime-base AS gateway.*?)^USER foxgov\n/$1/ms } },
      qr/stage gateway runs as root/ ],
    [ stages => 'the gateway without HEALTHCHECK',
      { 'docker/Dockerfile' => sub { s/^HEALTHCHECK .*?\n(?=STOPSIGNAL|#)//ms } },
      qr/no HEALTHCHECK/ ],
    [ 'build steps' => 'make all before install-deps',
      { 'docker/Dockerfile' => sub {
            s/^RUN sh lua-free-scripts\/install-deps\n//m;
            s/^(RUN make -j2 all\n)/$1RUN sh lua-free-scripts\/install-deps\n/m } },
      qr/out of the CI's order/ ],
    [ 'build steps' => 'the CI builds with make -j4 all, the Dockerfile not',
      { 'lua-free-scripts/test' => sub { s/^make -j2 all$/make -j4 all/m } },
      qr/does not run `make -j4 all`/ ],
    [ 'build steps' => 'no make all',
      { 'docker/Dockerfile' => sub { s/^RUN make -j2 all\n//m } },
      qr/does not run `make -j2 all`/ ],
    [ 'build steps' => 'a script of its own instead of install-deps',
      { 'docker/Dockerfile' => sub { s{RUN sh lua-free-scripts/install-deps}{RUN sh docker/deps.sh}m } },
      qr/does not run `sh lua-free-scripts\/install-deps`.*|docker\/deps\.sh, which does not exist/s ],
    [ 'build steps' => 'install-deps run before it is copied',
      { 'docker/Dockerfile' => sub { s{^COPY lua-free-scripts/install-deps \S+\n}{}m } },
      qr/runs lua-free-scripts\/install-deps before it is copied in/ ],
    [ 'build steps' => 'make install without DESTDIR',
      { 'docker/Dockerfile' => sub { s/ DESTDIR=\/staging//m } },
      qr/without PREFIX= and DESTDIR=/ ],
    [ packages => 'an apt-get install list in the build stage',
      { 'docker/Dockerfile' => sub { s{^(RUN sh lua-free-scripts/install-deps)$}{RUN apt-get update && apt-get install -y libjansson-dev\n$1}m } },
      qr/the build stage installs packages itself/ ],
    [ packages => 'a runtime package install-deps does not have',
      { 'docker/Dockerfile' => sub { s/nginx-core \\/nginx-core curl \\/ } },
      qr/installs curl, which install-deps does not/ ],
    [ packages => 'install-deps drops nginx-core',
      { 'lua-free-scripts/install-deps' => sub { s/^nginx-core nginx-dev$/nginx-dev/m } },
      qr/installs nginx-core, which install-deps does not/ ],
    [ packages => 'a package list not from runtime-packages',
      { 'docker/Dockerfile' => sub { s{\$\(cat /usr/share/foxgov/ledgerd.packages\)}{\$(cat /etc/my.packages)} } },
      qr{\$\(cat /etc/my.packages\) is not a list} ],
    [ copies => 'a COPY source that does not exist',
      { 'docker/nginx.conf' => undef },
      qr/COPY source docker\/nginx.conf does not exist/ ],
    [ copies => 'a COPY source .dockerignore leaves out',
      { '.dockerignore' => sub { $_ .= "conf/schemas/*.json\n" } },
      qr/conf\/schemas\/\S+ \(in conf\/schemas\) is left out/ ],
    [ copies => 'a --from=build path make install does not make',
      { 'docker/Dockerfile' => sub { s{/staging/usr/bin/foxgov-ledgerd /usr/bin}{/staging/usr/sbin/foxgov-ledgerd /usr/bin} } },
      qr{/staging/usr/sbin/foxgov-ledgerd is not made by the build stage} ],
    [ copies => '--from a stage that is not there',
      { 'docker/Dockerfile' => sub { s/--from=build \/staging\/usr\/bin\/foxgov \//--from=builder \/staging\/usr\/bin\/foxgov \// } },
      qr/--from=builder is no earlier stage/ ],
    [ context => '.dockerignore leaves out core/',
      { '.dockerignore' => sub { $_ .= "core\n" } },
      qr/leaves out core\/\S+, which the build reads/ ],
    [ context => '.dockerignore leaves out a header',
      { '.dockerignore' => sub { $_ .= "**/*.h\n" } },
      qr/leaves out \S+\.h, which the build reads/ ],
    [ context => '.dockerignore lets the secrets in',
      { '.dockerignore' => sub { s/^docker\/secrets\n//m } },
      qr/lets in docker\/secrets\/x/ ],
    [ context => '.dockerignore re-includes build/',
      { '.dockerignore' => sub { $_ .= "!build/bin/foxgov\n" } },
      qr/lets in build\/bin\/foxgov/ ],
    [ context => '.dockerignore leaves out the mock upstreams\' Perl module',
      { '.dockerignore' => sub { $_ .= "t\n" } },
      qr/leaves out t\/lib\/FoxGov\/Test\/Upstream.pm/ ],
    [ compose => 'no redis service',
      { 'docker/compose.yaml' => sub { s/^  redis:\n(?:    .*\n|      .*\n|\s*\n)*?(?=^  ledgerd:)//m } },
      qr/no service redis/ ],
    [ compose => 'YAML that does not parse',
      { 'docker/compose.yaml' => sub { s/^services:\n/services:\n   - broken: [\n/m } },
      qr/does not parse/ ],
    [ compose => 'a mounted file that does not exist',
      { 'docker/compose.yaml' => sub { s{\./redis\.conf:}{./redis-typo.conf:} } },
      qr/redis mounts \.\/redis-typo\.conf, which does not exist/ ],
    [ compose => 'a build target that is no stage',
      { 'docker/compose.yaml' => sub { s/target: gateway/target: gatway/ } },
      qr/builds target gatway, no stage/ ],
    [ compose => 'the app outside the gateway\'s namespace',
      { 'docker/compose.yaml' => sub { s/^(  app:.*?)    network_mode: service:gateway\n/$1/ms } },
      qr/app does not share the gateway's network namespace/ ],
    [ compose => 'ledgerd\'s Redis address is not the gateway\'s',
      { 'docker/foxgov-ledgerd.conf' => sub { s/^redis\s+172\.30\.1\.10:6379/redis 172.30.1.11:6379/m } },
      qr/not the gateway's ipv4_address/ ],
    [ compose => 'Redis by host name',
      { 'docker/foxgov-ledgerd.conf' => sub { s/^redis\s+\S+/redis redis:6379/m } },
      qr/is not an IP:PORT/ ],
    [ compose => 'a password in the ledger URI',
      { 'docker/foxgov-ledgerd.conf' => sub { s{postgresql://foxgov_ledgerd@}{postgresql://foxgov_ledgerd:hunter2\@} } },
      qr/holds a password/ ],
    [ compose => 'a password in the environment',
      { 'docker/compose.yaml' => sub { s/POSTGRES_PASSWORD_FILE: \S+/POSTGRES_PASSWORD: hunter2/ } },
      qr/POSTGRES_PASSWORD in its environment/ ],
    [ compose => 'an unpinned image',
      { 'docker/compose.yaml' => sub { s/image: redis:\S+/image: redis:latest/ } },
      qr/image redis:latest is not pinned/ ],
    [ compose => 'a secret gen-secrets does not make',
      { 'docker/gen-secrets' => sub { s/^put redis_password .*\n//m } },
      qr/secret redis_password is not made by docker\/gen-secrets/ ],
    [ compose => 'the gateway\'s Redis not on loopback',
      { 'docker/nginx.conf' => sub { s/foxgov_redis          127\.0\.0\.1:6379/foxgov_redis          172.30.1.10:6379/ } },
      qr/foxgov_redis is 172\.30\.1\.10:6379, not 127\.0\.0\.1:6379/ ],
    [ compose => 'a credential file that is not a secret',
      { 'docker/nginx.conf' => sub { s{/run/secrets/openai_api_key}{/run/secrets/openai_key} } },
      qr{reads /run/secrets/openai_key, not a secret of the gateway} ],
);

for my $b (@broken) {
    my ($check, $what, $edit, $want) = @$b;
    (my $slug = $what) =~ s/\W+/-/g;
    my $root = broken_copy($slug, %$edit);
    my @p = $checks{$check}->($root);
    ok((grep { $_ =~ $want } @p), "$check fails with $what")
        or diag("problems:\n" . join("\n", @p));
    remove_tree($root) unless $ENV{FOXGOV_TEST_KEEP};
}

# =================================================================
# For real

my $module = $ENV{FOXGOV_MODULE} // "$top/build/modules/ngx_http_foxgov_module.so";
my $foxgov = $ENV{FOXGOV_CLI} // "$top/build/bin/foxgov";
my $ledgerd_bin = $ENV{FOXGOV_LEDGERD} // "$top/build/bin/foxgov-ledgerd";
my $nginx = $ENV{FOXGOV_NGINX} // '/usr/sbin/nginx';

# --------------------------------------------------- runtime-packages

SKIP: {
    skip 'not built (make)', 3 unless -x $foxgov && -x $ledgerd_bin
                                       && -f $module;
    my ($rc, $out) = run_cmd({}, 'sh', "$top/docker/runtime-packages",
                             $module, $foxgov, $ledgerd_bin);
    is($rc, 0, 'docker/runtime-packages maps the libraries to packages')
        or diag($out);
    my %got = map { $_ => 1 } split /\n/, $out;
    my @want = qw(libjansson4 libhiredis0.14 libpq5 libarchive13 libssl3
                  libpcre2-8-0);
    ok(!(grep { !$got{$_} } @want), 'among them ' . join(' ', @want))
        or diag($out);
    ($rc, $out) = run_cmd({}, 'sh', "$top/docker/runtime-packages",
                          "$tmp/no-such-file");
    isnt($rc, 0, '... and fails on a file that is not there');
}

# --------------------------------------------------- secrets and init

my $R = "$tmp/root";        # the containers' file systems, merged
make_path($R);
chmod 0755, $R;
# the containers' paths a config names, in $R
my %in_R = map { $_ => "$R$_" }
    qw(/etc/foxgov /etc/nginx /run/secrets /var/spool/foxgov /var/lib/foxgov
       /tmp);

my ($rc, $out) = run_cmd({}, 'sh', "$top/docker/gen-secrets", "$R/run/secrets");
is($rc, 0, 'docker/gen-secrets') or diag($out);
my ($compose) = read_yaml("$top/docker/compose.yaml");
my @secret_names = sort keys %{ $compose->{secrets} // {} };
ok(!(grep { !-s "$R/run/secrets/$_" } @secret_names),
   'it makes every secret compose names: ' . join(' ', @secret_names));
is(sprintf('%o', (stat "$R/run/secrets")[2] & 07777), '700',
   'in a directory only its owner reads');
my $pw_before = slurp("$R/run/secrets/redis_password");
like($pw_before, qr/^[0-9a-f]{64}\n\z/, 'passwords: 32 random bytes, hex');
run_cmd({}, 'sh', "$top/docker/gen-secrets", "$R/run/secrets");
is(slurp("$R/run/secrets/redis_password"), $pw_before,
   'run again, it keeps what is there');
my $gi = slurp("$top/docker/secrets/.gitignore");
like($gi, qr/^\*$/m, 'docker/secrets/ is ignored by git');
# the mocks and the gateway share the credentials
spew("$R/run/secrets/openai_api_key", "sk-docker-test\n");
spew("$R/run/secrets/servicenow_token", "snow-docker-test\n");

SKIP: {
    skip 'not built (make)', 2 unless -x $foxgov;
    my %env = (
        FOXGOV_CLI          => $foxgov,
        FOXGOV_SIGNING      => "$R/var/lib/foxgov/signing",
        FOXGOV_LEDGERD_KEYS => "$R/var/lib/foxgov/keys",
        FOXGOV_GATEWAY_ETC  => "$R/etc/foxgov",
        FOXGOV_APP          => "$R/run/foxgov",
        FOXGOV_BUNDLE_SRC   => "$top/conf/bundles/itsm-triage",
    );
    ($rc, $out) = run_cmd(\%env, 'sh', "$top/docker/foxgov-init");
    is($rc, 0, 'docker/foxgov-init makes the keys, bundle and token')
        or diag($out);
    ok(!(grep { !-s "$R/$_" } qw(etc/foxgov/auth-keys.jwks.json
        etc/foxgov/approver-keys.jwks.json etc/foxgov/bundle-keys.jwks.json
        etc/foxgov/bundle.tar.gz run/foxgov/token
        var/lib/foxgov/keys/checkpoint.pem)),
       'every file the gateway, the app and ledgerd read');
}

# ------------------------------------------------- the gateway's files

# Lay the gateway image's files out in $R from the Dockerfile's own COPY
# lines (the context ones; the module from build/modules), then the
# compose mounts on top: nginx -t reads what the container would.
for my $s (stage_chain($df, stage_named($df, 'gateway'))) {
    for my $i (stage_inst($df, $s)) {
        next unless $i->{kw} eq 'COPY';
        my @a = split ' ', $i->{args};
        my $dest = pop @a;
        if (defined $i->{flags}{from}) {
            copy($module, "$R$dest") or die $!
                if $a[0] =~ /ngx_http_foxgov_module\.so\z/
                   && make_path(dirname("$R$dest"));
            next;
        }
        for my $src (@a) {
            if (-d "$top/$src") {
                make_path("$R$dest");
                copy($_, "$R$dest/" . basename($_)) or die $!
                    for grep { -f } glob("$top/$src/*");
            } else {
                make_path(dirname("$R$dest"));
                copy("$top/$src", "$R$dest") or die "$src: $!";
            }
        }
    }
}
for my $v (@{ $compose->{services}{gateway}{volumes} }) {
    my ($src, $dest) = $v =~ m{^(\.[^:]+):([^:]+)};
    next unless $src;
    copy("$top/docker/$src", "$R$dest") or die "$src: $!";
}
make_path("$R/var/spool/foxgov", "$R/tmp");
chmod 0777, "$R/var/spool/foxgov";     # nobody's, the workers' as root
chmod 01777, "$R/tmp";
ok(-f "$R/etc/nginx/nginx.conf" && -f "$R/etc/nginx/foxgov-upstreams.conf"
   && -d "$R/etc/nginx/schemas", 'the gateway image\'s files, laid out');

# docker/nginx.conf and an upstreams file, moved into $R and onto
# free loopback ports
my %port = (gw => free_port(), metrics => free_port(),
            redis => free_port(), mock => free_port(),
            closed => free_port());

sub moved_conf {
    my ($text) = @_;
    return move_conf($text, paths => \%in_R, module => $module,
                     listen => [ $port{gw}, $port{metrics} ],
                     redis  => "127.0.0.1:$port{redis}");
}

# real providers: to a closed loopback port (nothing leaves here); the
# demo's mocks: to the mock
sub moved_upstreams {
    my ($text) = @_;
    return move_conf($text, upstreams => sub {
        my (undef, $host, $was) = @_;
        return "$host:$was" eq '127.0.0.1:8090' ? $port{mock} : $port{closed};
    });
}

sub nginx_t {
    my ($rc, $out) = run_cmd({}, $nginx, '-p', "$R/etc/nginx/", '-c',
                             "$R/etc/nginx/nginx.conf", '-e', 'stderr', '-t');
    return ($rc, $out);
}

my $nginx_conf = moved_conf(slurp("$top/docker/nginx.conf"));
is_deeply([ paths_left($nginx_conf, $tmp, $top, $module) ], [],
          'no path of the image left in the moved nginx.conf');
spew("$R/etc/nginx/nginx.conf", $nginx_conf);

my $can_nginx = -x $nginx && -f $module && -x $foxgov;

SKIP: {
    skip 'nginx, the module or the CLI missing', 5 unless $can_nginx;
    for my $up ([ 'the real providers', 'upstreams.conf' ],
                [ 'the demo\'s mocks', 'upstreams.demo.conf' ]) {
        spew("$R/etc/nginx/foxgov-upstreams.conf",
             moved_upstreams(slurp("$top/docker/$up->[1]")));
        my ($rc, $out) = nginx_t();
        is($rc, 0, "nginx -t accepts docker/nginx.conf with $up->[0] "
           . "(docker/$up->[1])") or diag($out);
        unlike($out, qr/\[(?:emerg|alert|crit|error|warn)\]/,
               '... without a warning') or diag($out);
    }

    # and refuses it when a file it reads is not there
    rename "$R/run/secrets/redis_password", "$R/redis_password.away";
    my ($rc, $out) = nginx_t();
    isnt($rc, 0, 'nginx -t fails without the redis_password secret');
    rename "$R/redis_password.away", "$R/run/secrets/redis_password";
}

# ------------------------------------------------------------- Redis

my ($redis_pid, $redis_client);
my $redis_pw = slurp("$R/run/secrets/redis_password") =~ s/\n.*//sr;
my $have_redis = grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

SKIP: {
    skip 'no redis-server', 6 unless $have_redis;
    require Redis;

    my $conf = slurp("$top/docker/redis.conf");
    $conf =~ s/^bind .*$/bind 127.0.0.1/m;
    $conf =~ s/^port \d+$/port $port{redis}/m;
    $conf =~ s{^dir /data$}{dir $tmp/redis}m;
    make_path("$tmp/redis");
    spew("$tmp/redis/redis.conf", $conf);

    $redis_pid = fork();
    die "fork: $!" unless defined $redis_pid;
    if ($redis_pid == 0) {
        $ENV{FOXGOV_REDIS_CONF} = "$tmp/redis/redis.conf";
        $ENV{FOXGOV_REDIS_PASSWORD_FILE} = "$R/run/secrets/redis_password";
        open STDOUT, '>>', "$tmp/redis/redis.log";
        open STDERR, '>&', \*STDOUT;
        exec 'sh', "$top/docker/redis-start" or POSIX::_exit(127);
    }
    my $deadline = time() + 10;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{redis}")) {
        die "redis did not start: " . slurp("$tmp/redis/redis.log")
            if time() > $deadline || waitpid($redis_pid, WNOHANG) == $redis_pid;
        sleep 0.05;
    }
    ok(1, 'docker/redis-start starts Redis with docker/redis.conf');

    my $anon = Redis->new(server => "127.0.0.1:$port{redis}", reconnect => 0);
    ok(!eval { $anon->xrange('foxgov:ev:{acme}', '-', '+'); 1 }
       && $@ =~ /NOAUTH/,
       'without the password Redis refuses (the app shares its namespace)');
    $redis_client = Redis->new(server => "127.0.0.1:$port{redis}",
                               reconnect => 0, password => $redis_pw);
    my %cfg;
    for my $k (qw(appendonly appendfsync maxmemory-policy)) {
        my @kv = $redis_client->config_get($k);
        $cfg{$k} = $kv[1];
    }
    is($cfg{appendonly}, 'yes', 'appendonly yes');
    is($cfg{appendfsync}, 'always', 'appendfsync always');
    is($cfg{'maxmemory-policy'}, 'noeviction', 'maxmemory-policy noeviction');
    my $cmdline = do { local (@ARGV, $/) = "/proc/$redis_pid/cmdline"; <> } // '';
    unlike($cmdline, qr/\Q$redis_pw\E/, 'the password is not on its command line');
}

# ------------------------------------------ the gateway, running

my $nginx_pid;
my $token = -f "$R/run/foxgov/token" ? slurp("$R/run/foxgov/token") =~ s/\s+//gr : '';

sub http {
    my ($raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{gw}",
                                  Timeout => 5) or return '';
    print {$s} $raw;
    local $/;
    my $r = <$s> // '';
    close $s;
    return $r;
}

SKIP: {
    skip 'nginx, the module, the CLI or redis-server missing', 9
        unless $can_nginx && $redis_client;
    require FoxGov::Test::Upstream;

    my $mock = FoxGov::Test::Upstream->new(port => $port{mock},
        log => "$tmp/mock.log",
        keys => { openai => 'sk-docker-test', servicenow => 'snow-docker-test' },
    )->start;

    spew("$R/etc/nginx/foxgov-upstreams.conf",
         moved_upstreams(slurp("$top/docker/upstreams.demo.conf")));
    $nginx_pid = fork();
    die "fork: $!" unless defined $nginx_pid;
    if ($nginx_pid == 0) {
        POSIX::setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$tmp/nginx.out";
        open STDERR, '>&', \*STDOUT;
        exec $nginx, '-p', "$R/etc/nginx/", '-c', "$R/etc/nginx/nginx.conf",
             '-e', 'stderr', '-g', 'daemon off;' or POSIX::_exit(127);
    }
    my $deadline = time() + 10;
    until (-s "$R/tmp/nginx.pid") {
        die "nginx did not start: " . slurp("$tmp/nginx.out")
            if time() > $deadline || waitpid($nginx_pid, WNOHANG) == $nginx_pid;
        sleep 0.05;
    }

    ($rc, $out) = run_cmd({}, 'perl', "$top/docker/healthcheck",
                          "127.0.0.1:$port{gw}", '/healthz');
    is($rc, 0, 'docker/healthcheck: the gateway is healthy') or diag($out);

    # a governed call, allowed: forwarded with the secret as credential
    # once Redis has its evidence (strict)
    my $r = http("GET /servicenow/api/now/table/incident?sysparm_limit=1 HTTP/1.0\r\n"
                 . "Host: localhost\r\nAuthorization: Bearer $token\r\n\r\n");
    like($r, qr{^HTTP/1\.1 200 }, 'ServiceNow read through the gateway: 200')
        or diag($r . slurp("$tmp/nginx.out"));
    my $chat = '{"model":"gpt-4o-mini-2024-07-18","messages":[{"role":"user","content":"hi"}]}';
    $r = http("POST /v1/chat/completions HTTP/1.0\r\nHost: localhost\r\n"
              . "Authorization: Bearer $token\r\nContent-Type: application/json\r\n"
              . 'Content-Length: ' . length($chat) . "\r\n\r\n$chat");
    like($r, qr{^HTTP/1\.1 200 }, 'an OpenAI chat completion (pinned model): 200')
        or diag($r);
    my @reqs = $mock->requests;
    is(scalar(grep { ($_->{headers}{authorization} // '') =~
                     /^Bearer (?:sk|snow)-docker-test\z/ } @reqs), 2,
       'the mocks got the secrets as credentials, not the token');

    $r = http("POST /v1/chat/completions HTTP/1.0\r\nHost: localhost\r\n"
              . "Content-Length: 2\r\n\r\n{}");
    like($r, qr{^HTTP/1\.1 401 }, 'no token: 401');

    # the evidence: in Redis (6 records: 2 calls x AuthContext, decision,
    # call record; the 401's decision too)
    my @entries;
    $deadline = time() + 10;
    while (time() < $deadline) {
        @entries = $redis_client->xrange('foxgov:ev:{acme}', '-', '+');
        last if @entries >= 6;
        sleep 0.1;
    }
    cmp_ok(scalar @entries, '>=', 6, 'the evidence is in Redis: '
           . scalar(@entries) . ' records of tenant acme');

    $r = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port{metrics}");
    print {$r} "GET /metrics HTTP/1.0\r\n\r\n";
    my $m = do { local $/; <$r> } // '';
    like($m, qr/^foxgov_redis_connected_workers [1-9]/m,
         'metrics: the workers are connected to Redis');

    kill 'QUIT', $nginx_pid;
    waitpid $nginx_pid, 0;
    undef $nginx_pid;
    ($rc, $out) = run_cmd({}, 'perl', "$top/docker/healthcheck",
                          "127.0.0.1:$port{gw}", '/healthz');
    isnt($rc, 0, 'docker/healthcheck: stopped, unhealthy');
    unlike(slurp("$tmp/nginx.out"), qr/\[(?:alert|emerg|crit)\]/,
           'no [alert], [emerg] or [crit] from nginx');
    $mock->stop;
}

# ----------------------------------------------- PostgreSQL and ledgerd

SKIP: {
    require FoxGov::Test::Postgres;
    skip 'no PostgreSQL, redis-server or ledgerd', 9
        unless FoxGov::Test::Postgres::available() && $redis_client
               && -x $ledgerd_bin && -x $foxgov;

    my $pg = FoxGov::Test::Postgres->new;
    $pg->start;
    my $pgbin = dirname($pg->bin('psql'));

    ($rc, $out) = run_cmd({ PATH => "$pgbin:$ENV{PATH}",
        PGHOST => '127.0.0.1', PGPORT => $pg->port,
        POSTGRES_USER => $pg->user, POSTGRES_DB => $pg->db,
        FOXGOV_LEDGERD_DB_PASSWORD_FILE => "$R/run/secrets/ledgerd_db_password" },
        'sh', "$top/docker/postgres-init.sh");
    is($rc, 0, 'docker/postgres-init.sh makes foxgov_ledgerd and its schema')
        or diag($out);
    is($pg->psql(q{SELECT rolsuper::text || ' ' || n.nspname FROM pg_roles r }
                 . q{JOIN pg_namespace n ON n.nspowner = r.oid }
                 . q{WHERE rolname = 'foxgov_ledgerd'}),
       'false foxgov', '... not a superuser, owning the schema foxgov');

    # password authentication for every role but the test's own
    spew($pg->dir . '/data/pg_hba.conf',
         "host all " . $pg->user . " 127.0.0.1/32 trust\n"
         . "host all all 127.0.0.1/32 scram-sha-256\n");
    $pg->psql('SELECT pg_reload_conf()');

    # docker/foxgov-ledgerd.conf, moved: Redis, PostgreSQL, paths
    my $conf = slurp("$top/docker/foxgov-ledgerd.conf");
    $conf =~ s/^redis\s+\S+$/redis 127.0.0.1:$port{redis}/m;
    $conf =~ s{^(ledger\s+postgresql://[^@]+@)[^/]+}{${1}127.0.0.1:${\ $pg->port}}m;
    $conf = map_paths($conf, \%in_R);
    spew("$tmp/ledgerd.conf", $conf);
    my $uri = ledgerd_option($conf, 'ledger');

    my %env = (PATH => dirname($ledgerd_bin) . ":$ENV{PATH}",
        FOXGOV_PG_PASSWORD_FILE => "$R/run/secrets/ledgerd_db_password",
        FOXGOV_PGPASS => "$tmp/ledgerd-tmp/pgpass");
    delete $ENV{PGPASSFILE};

    ($rc, $out) = run_cmd({ %env, FOXGOV_PG_PASSWORD_FILE => "$tmp/none" },
        'sh', "$top/docker/ledgerd-entrypoint", '--config', "$tmp/ledgerd.conf",
        '--once', '--orphan-grace', '0ms');
    isnt($rc, 0, 'without the password secret ledgerd cannot connect');

    ($rc, $out) = run_cmd(\%env, 'sh', "$top/docker/ledgerd-entrypoint",
        '--config', "$tmp/ledgerd.conf", '--once', '--orphan-grace', '0ms');
    is($rc, 0, 'docker/ledgerd-entrypoint runs foxgov-ledgerd with '
       . 'docker/foxgov-ledgerd.conf, the password from the secret')
        or diag($out);
    my ($appended) = $out =~ /stopping: (\d+) appended/;
    cmp_ok($appended // 0, '>=', 6, 'it appends the gateway\'s records: '
           . ($appended // 0)) or diag($out);
    unlike($out, qr/\Q$redis_pw\E/, 'no password in its log');
    is(sprintf('%o', (stat "$tmp/ledgerd-tmp/pgpass")[2] & 07777), '600',
       'the pgpass it wrote is its own only');

    ($rc, $out) = run_cmd({ PGPASSFILE => "$tmp/ledgerd-tmp/pgpass" },
        $foxgov, 'verify', $uri, '--tenant', 'acme', '--trusted-key',
        "$R/var/lib/foxgov/keys/checkpoint.jwks.json");
    is($rc, 0, 'the PostgreSQL ledger verifies, with its signed checkpoint')
        or diag($out);
    like($out, qr/verified: tenant acme, \d+ records.*[1-9]\d* checkpoints? verified/, '... ' . ($out =~ s/\n.*//sr));

    $pg->stop;
}

if ($redis_pid) {
    kill 'TERM', $redis_pid;
    waitpid $redis_pid, 0;
}

END {
    local $?;
    if ($nginx_pid) { kill 'KILL', -$nginx_pid; waitpid $nginx_pid, 0 }
    if ($redis_pid) { kill 'KILL', $redis_pid; waitpid $redis_pid, 0 }
}

done_testing();
