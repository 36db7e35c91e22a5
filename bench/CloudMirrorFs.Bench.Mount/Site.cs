using System.Text.Json.Nodes;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>
/// One file system holding all three targets side by side: a tmpfs the bench mounts (throughput and metadata) or a
/// folder under /var/tmp on disk (fsync latency). Disposing stops the mounts and unmounts the tmpfs.
/// </summary>
internal sealed class Site : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _undo = [];
    private JsonObject? _description;

    private Site(string root, string kind)
    {
        Root = root;
        Kind = kind;
    }

    public string Root { get; }

    /// <summary>"tmpfs" or "disk".</summary>
    public string Kind { get; }

    /// <summary>In the base order raw, passthrough, cmfs; each run rotates it.</summary>
    public IReadOnlyList<BenchTarget> Targets { get; private set; } = [];

    public static async Task<Site> CreateAsync(
        string root, bool tmpfs, BenchOptions options, Toolchain tools, Cleanup cleanup, CancellationToken cancellationToken)
    {
        var site = new Site(root, tmpfs ? "tmpfs" : "disk");
        try
        {
            await site.SetUpAsync(tmpfs, options, tools, cleanup, cancellationToken);
            return site;
        }
        catch
        {
            await site.DisposeAsync();
            throw;
        }
    }

    /// <summary>Where the site lives and how each target was set up (complete once the site is disposed).</summary>
    public JsonObject Describe()
    {
        if (_description is null)
        {
            (string type, string mountOptions) = Mounts.FileSystemOf(Root);
            _description = new JsonObject
            {
                ["root"] = Root,
                ["fileSystem"] = type,
                ["mountOptions"] = mountOptions,
            };
        }
        var result = (JsonObject)_description.DeepClone();
        var targets = new JsonObject();
        foreach (BenchTarget t in Targets)
        {
            targets[t.Name] = t.Describe();
        }
        result["targets"] = targets;
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        for (int i = _undo.Count - 1; i >= 0; i--)
        {
            await _undo[i].DisposeAsync();
        }
        _undo.Clear();
    }

    private async Task SetUpAsync(bool tmpfs, BenchOptions options, Toolchain tools, Cleanup cleanup, CancellationToken cancellationToken)
    {
        _ = Directory.CreateDirectory(Root);
        if (tmpfs)
        {
            if (Mounts.IsMounted(Root))
            {
                throw new BenchFailureException($"{Root} is already a mount point");
            }
            Log.Info($"mounting a tmpfs (size={options.TmpfsSize}) at {Root}");
            _ = await Shell.CheckAsync("mount", ["-t", "tmpfs", "-o", $"size={options.TmpfsSize}", "tmpfs", Root], TimeSpan.FromSeconds(30), cancellationToken);
            _undo.Add(cleanup.Add($"unmount the tmpfs at {Root}", async () =>
            {
                if (options.Keep)
                {
                    Log.Info($"--keep: the tmpfs at {Root} stays mounted; remove it with: umount {Root}");
                    return;
                }
                ShellResult r = await Shell.RunAsync("umount", [Root], TimeSpan.FromSeconds(30), CancellationToken.None);
                if (r.ExitCode != 0)
                {
                    Log.Info($"umount {Root}: {r.Stderr.Trim()}; detaching lazily");
                    await Mounts.DetachAsync(Root);
                }
            }));
        }
        // Capture where the site lives while the tmpfs is still mounted.
        _ = Describe();
        Targets =
        [
            new RawTarget(Path.Combine(Root, "raw")),
            new PassthroughTarget(Path.Combine(Root, "passthrough"), tools.PassthroughBinary),
            new CmfsTarget(Path.Combine(Root, "cmfs"), tools.CmfsDll),
        ];
        foreach (BenchTarget t in Targets)
        {
            Log.Info($"{Kind}: starting {t.Name}");
            _undo.Add(cleanup.Add($"stop {t.Name} on {Kind}", t.StopAsync));
            await t.StartAsync(cancellationToken);
            await PreflightAsync(t, cancellationToken);
        }
    }

    /// <summary>A write, read back and delete through the target before anything is measured.</summary>
    private static async Task PreflightAsync(BenchTarget t, CancellationToken cancellationToken)
    {
        string file = Path.Combine(t.WorkPath, "preflight.txt");
        string text = $"preflight {t.Name} {Guid.NewGuid()}";
        await Io.RunAsync($"preflight write/read/delete on {t.Name}", () =>
        {
            File.WriteAllText(file, text);
            string back = File.ReadAllText(file);
            if (back != text)
            {
                throw new BenchFailureException($"{t.Name}: read back \"{back}\" after writing \"{text}\"");
            }
            File.Delete(file);
        }, TimeSpan.FromSeconds(30), cancellationToken);
        t.EnsureAlive();
    }
}
