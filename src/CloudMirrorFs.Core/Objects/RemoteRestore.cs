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
    public sealed record Result(long Commit, long QueueSeq, long Files, long Directories, long Bytes);

    /// <summary>
    /// Restores the image (the newest, or the newest at or before <paramref name="atUtc"/>) into
    /// <paramref name="targetDir"/>, which is created if absent and must be empty. <paramref name="progress"/> gets
    /// (bytes done, bytes total).
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
        var nodes = image.Manifest.Nodes.OrderBy(kv => kv.Key.Count(c => c == '/')).ThenBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        long total = nodes.Where(n => n.Value.Kind == NodeKind.File).Sum(n => n.Value.Length);
        long done = 0, files = 0, dirs = 0;
        int blockSize = descriptor.BlockSize;
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.Directory))
        {
            Directory.CreateDirectory(Path.Join(targetDir, path));
            dirs++;
        }
        await Parallel.ForEachAsync(nodes.Where(n => n.Value.Kind == NodeKind.File), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (entry, ct) =>
            {
                var (path, node) = entry;
                string os = Path.Join(targetDir, path);
                using (var fs = new FileStream(os, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
                {
                    fs.SetLength(node.Length);
                    foreach (var (block, key) in node.Blocks.OrderBy(b => b.Key))
                    {
                        long start = block * blockSize;
                        int length = (int)Math.Clamp(node.Length - start, 0, blockSize);
                        if (length == 0)
                        {
                            continue;
                        }
                        byte[] data = await store.GetAsync(key, 0, length, ct).ConfigureAwait(false)
                            ?? throw new MirrorException(MirrorError.IoError, $"{store.Description}: block object {key} of {path} is missing; the image at commit {image.Manifest.Commit} is damaged");
                        fs.Position = start;
                        await fs.WriteAsync(data, ct).ConfigureAwait(false);
                        progress?.Report((Interlocked.Add(ref done, data.Length), total));
                    }
                }
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(os, (UnixFileMode)node.Mode);
                }
                File.SetLastWriteTimeUtc(os, node.MTime);
                Interlocked.Increment(ref files);
            }).ConfigureAwait(false);
        foreach (var (path, node) in nodes.Where(n => n.Value.Kind == NodeKind.Directory))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(Path.Join(targetDir, path), (UnixFileMode)node.Mode);
            }
        }
        progress?.Report((total, total));
        return new Result(image.Manifest.Commit, image.Manifest.QueueSeq, files, dirs, total);
    }
}
