using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>The native pieces, compiled into the bench's temp folder: libfuse's passthrough_ll example and our metaops helper.</summary>
internal sealed record Toolchain(string PassthroughBinary, string MetaOpsBinary, string CmfsDll, JsonObject Versions)
{
    public const string ExamplesDir = "/usr/share/doc/libfuse3-dev/examples";

    public const string PassthroughCompileCommand = "gcc -O2 -Wall passthrough_ll.c -I/usr/include/fuse3 -lfuse3 -lpthread -o passthrough_ll";

    public const string MetaOpsCompileCommand = "gcc -O2 -Wall -Wextra -o metaops metaops.c";

    public static async Task<Toolchain> BuildAsync(string binDir, string cmfsDll, CancellationToken cancellationToken)
    {
        _ = Directory.CreateDirectory(binDir);
        foreach (string file in new[] { "passthrough_ll.c", "passthrough_helpers.h" })
        {
            await CopyExampleAsync(file, Path.Combine(binDir, file), cancellationToken);
        }
        await using (Stream source = typeof(Toolchain).Assembly.GetManifestResourceStream("metaops.c")
            ?? throw new BenchFailureException("metaops.c is not embedded in the bench assembly"))
        await using (FileStream target = File.Create(Path.Combine(binDir, "metaops.c")))
        {
            await source.CopyToAsync(target, cancellationToken);
        }
        var timeout = TimeSpan.FromMinutes(2);
        _ = await Shell.CheckAsync("gcc", PassthroughCompileCommand.Split(' ')[1..], timeout, cancellationToken, binDir);
        _ = await Shell.CheckAsync("gcc", MetaOpsCompileCommand.Split(' ')[1..], timeout, cancellationToken, binDir);
        string passthrough = Path.Combine(binDir, "passthrough_ll");
        var versions = new JsonObject
        {
            ["kernel"] = (await File.ReadAllTextAsync("/proc/sys/kernel/osrelease", cancellationToken)).Trim(),
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["fio"] = await OutputAsync("fio", ["--version"], cancellationToken),
            ["gcc"] = await OutputAsync("gcc", ["-dumpfullversion"], cancellationToken),
            ["libfuse"] = await OutputAsync(passthrough, ["--version"], cancellationToken),
            ["cmfsCommit"] = await OutputAsync("git", ["describe", "--always", "--dirty", "--abbrev=12"], cancellationToken),
        };
        return new Toolchain(passthrough, Path.Combine(binDir, "metaops"), cmfsDll, versions);
    }

    private static async Task CopyExampleAsync(string name, string target, CancellationToken cancellationToken)
    {
        string path = Path.Combine(ExamplesDir, name);
        if (File.Exists(path))
        {
            File.Copy(path, target, overwrite: true);
            return;
        }
        // Some Debian releases compress larger doc files.
        await using FileStream gz = File.OpenRead(path + ".gz");
        await using var unzip = new GZipStream(gz, CompressionMode.Decompress);
        await using FileStream output = File.Create(target);
        await unzip.CopyToAsync(output, cancellationToken);
    }

    /// <summary>What a version query printed, its lines joined with "; " (null if it failed).</summary>
    private static async Task<string?> OutputAsync(string file, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        try
        {
            ShellResult r = await Shell.RunAsync(file, args, TimeSpan.FromSeconds(20), cancellationToken);
            string text = (r.Stdout + "\n" + r.Stderr).Trim();
            return r.ExitCode == 0 && text.Length > 0 ? string.Join("; ", text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)) : null;
        }
        catch (BenchFailureException)
        {
            return null;
        }
    }
}
