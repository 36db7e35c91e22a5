using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Objects;

/// <summary>Rebuilds a tree from an object-store remote alone: the descriptor, the image (or an older one), the block objects.</summary>
public static class RemoteRestore
{
    /// <summary>What a restore did.</summary>
    /// <param name="Commit">The commit restored.</param>
    /// <param name="QueueSeq">The queue position that commit covers.</param>
    /// <param name="Files">Files written.</param>
    /// <param name="Directories">Directories created.</param>
    /// <param name="Bytes">Bytes written.</param>
    public sealed record Result(long Commit, long QueueSeq, long Files, long Directories, long Bytes)
    {
        /// <summary>Symbolic links created.</summary>
        public long Symlinks { get; init; }
    }

    /// <summary>
    /// Restores the image (the newest, or the newest at or before <paramref name="atUtc"/>) into
    /// <paramref name="targetDir"/>, which is created if absent and must be empty. <paramref name="progress"/> gets
    /// (bytes done, bytes total). Symbolic links are created last, with their targets verbatim, once every file and
    /// directory is in place, so nothing the restore writes ever goes through one.
    /// </summary>
    public static async Task<Result> RestoreAsync(IObjectStore store, string targetDir, DateTime? atUtc, IProgress<(long Done, long Total)>? progress,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        targetDir = Path.GetFullPath(targetDir);
        if (File.Exists(targetDir))
        {
            throw new MirrorException(MirrorError.NotDirectory, $"restore target {targetDir} is a file; name a new or empty folder");
        }
        if (Directory.Exists(targetDir) && Directory.EnumerateFileSystemEntries(targetDir).Any())
        {
            throw new MirrorException(MirrorError.NotEmpty, $"restore target {targetDir} is not empty; name a new or empty folder");
        }
        await store.EnsureReadyAsync(createIfMissing: false, cancellationToken).ConfigureAwait(false);
        VolumeDescriptor descriptor = await RemoteImage.ReadDescriptorAsync(store, cancellationToken).ConfigureAwait(false);
        RemoteImage.CheckEncryption(store, descriptor, (store as CodecObjectStore)?.EncryptionParameter, "restore");
        RemoteImage image = await RemoteImage.LoadAsync(store, atUtc, cancellationToken).ConfigureAwait(false);
        if (atUtc is not null && image.Manifest.Commit == 0)
        {
            throw new MirrorException(MirrorError.NotFound, $"{store.Description}: no image at or before {atUtc:u} is still kept (see 'retention')");
        }
        Directory.CreateDirectory(targetDir);
        foreach (var (path, node) in image.Manifest.Nodes)
        {
            CheckNode(store, image, path, node);
        }
        var nodes = image.Manifest.Nodes.OrderBy(kv => kv.Key.Count(c => c == '/')).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        long total = nodes.Where(n => n.Value.Kind == NodeKind.File).Sum(n => n.Value.Length);
        long done = 0, files = 0, dirs = 0;
        int blockSize = descriptor.BlockSize;
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.Directory))
        {
            Directory.CreateDirectory(Path.Join(targetDir, path));
            dirs++;
        }
        // Every block of every file, many requests in flight: a long round trip does not serialise the restore.
        var handles = new Dictionary<string, Microsoft.Win32.SafeHandles.SafeFileHandle>(StringComparer.Ordinal);
        var unreadable = new List<(string Path, long Offset, string Problem)>();
        try
        {
            foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.File))
            {
                var handle = File.OpenHandle(Path.Join(targetDir, path), FileMode.CreateNew, FileAccess.Write, FileShare.None);
                handles[path] = handle;
                RandomAccess.SetLength(handle, node.Length);
            }
            var blocks = nodes.Where(n => n.Value.Kind == NodeKind.File)
                .SelectMany(n => n.Value.DataBlocks().Select(b => (Path: n.Key, Node: n.Value, Block: b, Source: n.Value.SourceOf(b)!)))
                .ToList();
            await Parallel.ForEachAsync(blocks, new ParallelOptions { MaxDegreeOfParallelism = ObjectStoreFacet.UploadWindow, CancellationToken = cancellationToken }, async (b, ct) =>
            {
                long start = b.Block * blockSize;
                int length = (int)Math.Clamp(b.Node.Length - start, 0, blockSize);
                if (length == 0)
                {
                    return;
                }
                byte[] data = new byte[length];
                await b.Source.AssembleAsync(data, async (key, n, ct) =>
                {
                    // A missing or damaged object costs its block, not the restore: everything else is written, and
                    // the blocks that could not be read are named at the end (they hold zeros).
                    string? problem;
                    try
                    {
                        byte[]? got = await store.GetAsync(key, 0, n, ct).ConfigureAwait(false);
                        if (got is not null)
                        {
                            return got;
                        }
                        problem = $"object {key} is missing";
                    }
                    catch (MirrorException e) when (CodecObjectStore.IsDamage(e))
                    {
                        problem = e.Message;
                    }
                    lock (unreadable)
                    {
                        unreadable.Add((b.Path, start, problem));
                    }
                    return null;
                }, ct).ConfigureAwait(false);
                if (data.AsSpan().ContainsAnyExcept((byte)0))
                {
                    // A block of zeros (a hole punched, a range zeroed) is left a hole: the file's length reads zeros there.
                    await RandomAccess.WriteAsync(handles[b.Path], data, start, ct).ConfigureAwait(false);
                }
                progress?.Report((Interlocked.Add(ref done, data.Length), total));
            }).ConfigureAwait(false);
        }
        finally
        {
            foreach (var h in handles.Values)
            {
                h.Dispose();
            }
        }
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.File))
        {
            string os = Path.Join(targetDir, path);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(os, (UnixFileMode)node.Mode);
            }
            File.SetLastWriteTimeUtc(os, node.MTime);
            files++;
        }
        long links = 0;
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.Symlink))
        {
            string os = Path.Join(targetDir, OperatingSystem.IsWindows() ? path.Replace('/', '\\') : path);
            File.CreateSymbolicLink(os, node.Target!);
            File.SetLastWriteTimeUtc(os, node.MTime); // the link's own time: never follows it
            links++;
        }
        // Folder modes and times last, deepest first, the root's too: a folder without write permission (0555) is only
        // closed once everything inside it is in place, and a folder's time is its own only once nothing more is made
        // in it.
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.Directory).Reverse())
        {
            string os = Path.Join(targetDir, path);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(os, (UnixFileMode)node.Mode);
            }
            Directory.SetLastWriteTimeUtc(os, node.MTime);
        }
        if (image.Manifest.Root is { } root)
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(targetDir, (UnixFileMode)root.Mode);
            }
            Directory.SetLastWriteTimeUtc(targetDir, root.MTime);
        }
        progress?.Report((total, total));
        if (unreadable.Count > 0)
        {
            var sorted = unreadable.OrderBy(u => u.Path, StringComparer.Ordinal).ThenBy(u => u.Offset).ToList();
            string where = string.Join("; ", sorted.Take(20).Select(u => $"{u.Path} at offset {u.Offset}")) + (sorted.Count > 20 ? $"; and {sorted.Count - 20} more" : "");
            throw new MirrorException(MirrorError.IoError,
                $"restored commit {image.Manifest.Commit} into {targetDir}, except {sorted.Count} block(s) of {sorted.Select(u => u.Path).Distinct().Count()} file(s) that could not be read from {store.Description} and hold zeros there: {where}. First cause: {sorted[0].Problem}. Take those files from another remote facet, or from an older image (--at)");
        }
        return new Result(image.Manifest.Commit, image.Manifest.QueueSeq, files, dirs, total) { Symlinks = links };
    }

    /// <summary>
    /// Refuses an image that would make the restore write outside the target: a path that is not a volume path, or a
    /// symbolic link under something that is not a directory of the image (that could be another link).
    /// </summary>
    private static void CheckNode(IObjectStore store, RemoteImage image, string path, RemoteNode node)
    {
        string? problem = null;
        try
        {
            VolumePath.Validate(path);
        }
        catch (MirrorException e)
        {
            problem = e.Message;
        }
        if (problem is null && node.Kind == NodeKind.Symlink)
        {
            string parent = VolumePath.Parent(path);
            if (path.Length == 0 || (parent.Length > 0 && (!image.Manifest.Nodes.TryGetValue(parent, out RemoteNode? p) || p.Kind != NodeKind.Directory)))
            {
                problem = $"symbolic link {path} is not inside a directory of the image";
            }
            else if (string.IsNullOrEmpty(node.Target))
            {
                problem = $"symbolic link {path} has no target";
            }
        }
        if (problem is not null)
        {
            throw new MirrorException(MirrorError.IoError, $"{store.Description}: the image at commit {image.Manifest.Commit} is damaged ({problem}); nothing outside the target was written");
        }
    }
}
