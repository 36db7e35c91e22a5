using System.Text.Json;

namespace CloudMirrorFs.Objects;

/// <summary>Reading a remote image: the descriptor, the highest valid commit, its checkpoint and journals.</summary>
internal sealed class RemoteImage
{
    public const string DescriptorKey = "volume.json";
    public const string CommitsPrefix = "commits/";
    public const string CheckpointsPrefix = "checkpoints/";

    private RemoteImage(RemoteManifest manifest, long checkpoint, IReadOnlyList<string> problems, IReadOnlyList<GarbageEntry> garbage)
    {
        Manifest = manifest;
        Checkpoint = checkpoint;
        Problems = problems;
        Garbage = garbage;
    }

    public RemoteManifest Manifest { get; }

    /// <summary>
    /// What the image superseded and may still be on the store, oldest first: the checkpoint's list, then what each
    /// journal after it freed (at the journal's time).
    /// </summary>
    public IReadOnlyList<GarbageEntry> Garbage { get; }

    /// <summary>The checkpoint the image was built from (0: none).</summary>
    public long Checkpoint { get; }

    /// <summary>Commits that could not be read (named by key), each stopping the replay before it.</summary>
    public IReadOnlyList<string> Problems { get; }

    public static string CommitKey(long n) => $"{CommitsPrefix}{n:D20}.json";

    public static string CheckpointKey(long n) => $"{CheckpointsPrefix}{n:D20}.json";

    public static long? ParseNumber(string key)
    {
        string name = key[(key.LastIndexOf('/') + 1)..];
        return name.EndsWith(".json", StringComparison.Ordinal) && long.TryParse(name.AsSpan(0, name.Length - 5), out long n) ? n : null;
    }

    /// <summary>
    /// Reads the descriptor, writing it when the store holds no volume yet. A new remote starts at the newest format,
    /// so that it is never rewritten while this build writes it (only a remote an older cmfs created is raised, see
    /// <see cref="RequireFormatAsync"/>): an overwrite is the one put a store without atomic puts could tear.
    /// </summary>
    public static async Task<VolumeDescriptor> ReadOrCreateDescriptorAsync(IObjectStore store, int blockSize, string volumeName, string? encryption,
        CancellationToken cancellationToken)
    {
        byte[]? bytes = await store.GetAsync(DescriptorKey, 0, null, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
        {
            var d = new VolumeDescriptor(VolumeDescriptor.NewestFormat, blockSize, volumeName, DateTime.UtcNow, encryption);
            await store.PutAsync(DescriptorKey, JsonSerializer.SerializeToUtf8Bytes(d), cancellationToken).ConfigureAwait(false);
            return d;
        }
        return ParseDescriptor(store, bytes);
    }

    /// <summary>Refuses a key that is not the one the remote was written with (or encryption that does not match), clearly.</summary>
    public static void CheckEncryption(IObjectStore store, VolumeDescriptor descriptor, string? configured, string facetName)
    {
        if (descriptor.Encryption == configured)
        {
            return;
        }
        string message = (descriptor.Encryption, configured) switch
        {
            (null, _) => $"facet '{facetName}' ({store.Description}) was written without encryption, but the configuration sets an encryption key; remove 'encryption' or use a new prefix",
            (_, null) => $"facet '{facetName}' ({store.Description}) is encrypted; configure its key with encryption.keyFile or encryption.keyEnv",
            _ => $"facet '{facetName}' ({store.Description}): the configured encryption key is not the one this remote was written with (key id {descriptor.Encryption![(descriptor.Encryption.IndexOf(':') + 1)..]} expected)",
        };
        throw new MirrorException(MirrorError.AccessDenied, message);
    }

    public static async Task<VolumeDescriptor> ReadDescriptorAsync(IObjectStore store, CancellationToken cancellationToken)
    {
        byte[] bytes = await store.GetAsync(DescriptorKey, 0, null, cancellationToken).ConfigureAwait(false)
            ?? throw new MirrorException(MirrorError.NotFound, $"{store.Description} holds no CloudMirrorFs volume ({DescriptorKey} is missing); check the bucket, prefix or folder");
        return ParseDescriptor(store, bytes);
    }

    /// <summary>
    /// Raises the descriptor's format to at least <paramref name="format"/> (one atomic put of the same descriptor
    /// with the new number), so that a reader too old for what the next commit holds refuses the remote with a clear
    /// message instead of silently dropping it. Returns the descriptor as it now stands.
    /// </summary>
    public static async Task<VolumeDescriptor> RequireFormatAsync(IObjectStore store, int format, CancellationToken cancellationToken)
    {
        VolumeDescriptor d = await ReadDescriptorAsync(store, cancellationToken).ConfigureAwait(false);
        if (d.Format >= format)
        {
            return d;
        }
        VolumeDescriptor raised = d with { Format = format };
        await store.PutAsync(DescriptorKey, JsonSerializer.SerializeToUtf8Bytes(raised), cancellationToken).ConfigureAwait(false);
        return raised;
    }

    private static VolumeDescriptor ParseDescriptor(IObjectStore store, byte[] bytes)
    {
        try
        {
            VolumeDescriptor d = JsonSerializer.Deserialize<VolumeDescriptor>(bytes)!;
            if (d.Format is < VolumeDescriptor.BaseFormat or > VolumeDescriptor.NewestFormat)
            {
                throw new MirrorException(MirrorError.NotSupported, $"{store.Description}: volume format {d.Format} is newer than this cmfs understands; upgrade cmfs");
            }
            return d;
        }
        catch (JsonException e)
        {
            throw new MirrorException(MirrorError.IoError, $"{store.Description}: {DescriptorKey} is damaged ({e.Message}); put back a good copy, or, to have cmfs send everything to it again, empty that folder, bucket or prefix");
        }
    }

    /// <summary>
    /// Builds the image: the highest valid commit (or the highest one at or before <paramref name="atUtc"/>), from
    /// the newest checkpoint at or before it plus the journals after that checkpoint.
    /// </summary>
    public static async Task<RemoteImage> LoadAsync(IObjectStore store, DateTime? atUtc, CancellationToken cancellationToken)
    {
        var commits = new List<long>();
        await foreach (ObjectInfo o in store.ListAsync(CommitsPrefix, cancellationToken).ConfigureAwait(false))
        {
            if (ParseNumber(o.Key) is { } n)
            {
                commits.Add(n);
            }
        }
        var checkpoints = new List<long>();
        await foreach (ObjectInfo o in store.ListAsync(CheckpointsPrefix, cancellationToken).ConfigureAwait(false))
        {
            if (ParseNumber(o.Key) is { } n)
            {
                checkpoints.Add(n);
            }
        }
        commits.Sort();
        checkpoints.Sort();
        var problems = new List<string>();
        // Newest checkpoint first; fall back to an older one if it cannot be read.
        for (int ci = checkpoints.Count - 1; ci >= -1; ci--)
        {
            RemoteManifest manifest = new();
            var garbage = new List<GarbageEntry>();
            long from = 0;
            if (ci >= 0)
            {
                CheckpointRecord? cp = await ReadJsonAsync<CheckpointRecord>(store, CheckpointKey(checkpoints[ci]), problems, cancellationToken).ConfigureAwait(false);
                if (cp is null || (atUtc is { } at0 && cp.CreatedUtc > at0))
                {
                    continue;
                }
                manifest = new RemoteManifest { Commit = cp.Commit, QueueSeq = cp.QueueSeq, Nodes = new Dictionary<string, RemoteNode>(cp.Nodes, StringComparer.Ordinal), Root = cp.Root, Writer = cp.Writer };
                from = cp.Commit;
                garbage.AddRange(cp.Garbage ?? []);
            }
            else if (commits.Count > 0 && commits[0] != 1)
            {
                break; // the journal before the oldest checkpoint was collected: no image without a checkpoint
            }
            foreach (long n in commits.Where(c => c > from))
            {
                CommitRecord? c = await ReadJsonAsync<CommitRecord>(store, CommitKey(n), problems, cancellationToken).ConfigureAwait(false);
                if (c is null || c.Previous != manifest.Commit || (atUtc is { } at && c.CreatedUtc > at))
                {
                    break; // the image is the last commit that chains
                }
                foreach (JournalOp op in c.Ops)
                {
                    manifest.Apply(op, null);
                }
                manifest.Commit = c.Commit;
                manifest.QueueSeq = c.QueueSeq;
                manifest.Writer = c.Writer;
                garbage.AddRange((c.Freed ?? []).Select(k => new GarbageEntry(k, c.CreatedUtc))); // absent only in a hand-made journal
            }
            return new RemoteImage(manifest, ci >= 0 ? checkpoints[ci] : 0, problems, garbage);
        }
        if (commits.Count > 0)
        {
            throw new MirrorException(MirrorError.IoError, $"{store.Description}: no readable checkpoint reaches the commits held ({string.Join("; ", problems)})");
        }
        return new RemoteImage(new RemoteManifest(), 0, problems, []);
    }

    private static async Task<T?> ReadJsonAsync<T>(IObjectStore store, string key, List<string> problems, CancellationToken cancellationToken) where T : class
    {
        var (_, value, problem) = await TryReadJsonAsync<T>(store, key, cancellationToken).ConfigureAwait(false);
        if (value is null)
        {
            problems.Add($"{key}: {problem}");
        }
        return value;
    }

    /// <summary>
    /// Reads a small JSON object: not found when missing; found with no value and the reason when it is damaged (a
    /// store that kept part of an interrupted upload, bytes altered at rest) or does not parse. A failing store throws.
    /// </summary>
    internal static async Task<(bool Found, T? Value, string? Problem)> TryReadJsonAsync<T>(IObjectStore store, string key, CancellationToken cancellationToken)
    {
        try
        {
            byte[]? bytes = await store.GetAsync(key, 0, null, cancellationToken).ConfigureAwait(false);
            if (bytes is null)
            {
                return (false, default, "missing");
            }
            T? value = JsonSerializer.Deserialize<T>(bytes);
            return value is null ? (true, default, "empty") : (true, value, null);
        }
        catch (Exception e) when (e is JsonException || CodecObjectStore.IsDamage(e))
        {
            return (true, default, e.Message);
        }
    }
}
