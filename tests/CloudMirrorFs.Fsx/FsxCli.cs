using System.CommandLine;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// The command line. Exit codes: 0 the trees stayed identical (one JSON line on stdout), 1 a mismatch or an
/// exception (the report on stderr), 2 usage error.
/// </summary>
internal static class FsxCli
{
    /// <summary>Exit code: every operation gave the same result in both trees.</summary>
    public const int Ok = 0;

    /// <summary>Exit code: a mismatch or an exception.</summary>
    public const int Failed = 1;

    /// <summary>Exit code: usage error.</summary>
    public const int UsageError = 2;

    /// <summary>Parses <paramref name="args"/>, validates them and runs the exerciser.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var underTest = new Option<string>("--under-test") { Description = "An existing, empty folder in the file system under test", Required = true };
        var reference = new Option<string>("--reference") { Description = "An existing, empty folder on a plain file system (the oracle)", Required = true };
        var ops = new Option<long>("--ops") { Description = "How many random operations to apply", DefaultValueFactory = _ => 100_000 };
        var seed = new Option<int?>("--seed") { Description = "The seed of every choice and of the data written (default: a random one, shown in the output)" };
        var files = new Option<int>("--files") { Description = "How many files (f0..fN-1) each folder holds", DefaultValueFactory = _ => 4 };
        var maxSize = new Option<long>("--max-size") { Description = "The largest size a file may reach, in bytes", DefaultValueFactory = _ => 256 * 1024 };
        var log = new Option<string?>("--log") { Description = "Write every operation to this file, one line each, before it runs" };
        var root = new RootCommand("fsx-style exerciser: the same random writes, truncates, reads, renames, reopens and fsyncs on both folders; stops at the first difference")
        {
            underTest, reference, ops, seed, files, maxSize, log,
        };
        root.SetAction(parse =>
        {
            var options = new FsxOptions
            {
                UnderTest = Path.GetFullPath(parse.GetValue(underTest)!),
                Reference = Path.GetFullPath(parse.GetValue(reference)!),
                Ops = parse.GetValue(ops),
                Seed = parse.GetValue(seed) ?? Random.Shared.Next(),
                Files = parse.GetValue(files),
                MaxSize = parse.GetValue(maxSize),
                LogPath = parse.GetValue(log) is { } path ? Path.GetFullPath(path) : null,
            };
            if (Validate(options) is { } error)
            {
                stderr.WriteLine($"fsx: {error}");
                return UsageError;
            }
            using var exerciser = new Exerciser(options, stdout, stderr);
            return exerciser.Run();
        });

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                stderr.WriteLine($"fsx: {error.Message}");
            }
            stderr.WriteLine("run with --help for the options");
            return UsageError;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
    }

    /// <summary>The first problem with <paramref name="options"/>, naming the option, or null.</summary>
    private static string? Validate(FsxOptions options)
    {
        if (options.Ops < 0)
        {
            return "--ops must be 0 or more";
        }
        if (options.Files is < 1 or > 10_000)
        {
            return "--files must be from 1 to 10000";
        }
        if (options.MaxSize < 1)
        {
            return "--max-size must be at least 1 byte";
        }
        foreach ((string name, string dir) in new[] { ("--under-test", options.UnderTest), ("--reference", options.Reference) })
        {
            if (!Directory.Exists(dir))
            {
                return $"{name}: the folder {dir} does not exist";
            }
            for (int i = 0; i < options.Files; i++)
            {
                string path = Path.Combine(dir, "f" + i);
                if (Path.Exists(path) || Path.Exists(path + FilePair.TempSuffix))
                {
                    return $"{name}: the folder {dir} must start empty, but it holds {Path.GetFileName(path)}";
                }
            }
        }
        if (string.Equals(options.UnderTest.TrimEnd(Path.DirectorySeparatorChar), options.Reference.TrimEnd(Path.DirectorySeparatorChar), StringComparison.Ordinal))
        {
            return "--under-test and --reference must be different folders";
        }
        if (options.LogPath is not null && !Directory.Exists(Path.GetDirectoryName(options.LogPath)))
        {
            return $"--log: the folder of {options.LogPath} does not exist";
        }
        return null;
    }
}
