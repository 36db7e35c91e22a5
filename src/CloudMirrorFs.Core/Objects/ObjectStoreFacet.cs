using System.Text.Json;
using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Objects;

/// <summary>
/// A remote facet kept in an object store (kinds <c>folder</c>, <c>s3</c>, <c>azure</c>), laid out as
/// docs/dev/remote-layout.md describes: a write-once volume descriptor, block objects under keys never overwritten,
/// and numbered commits (journals) with periodic checkpoints. The highest valid commit is the image; it only ever
/// moves at <see cref="CommitAsync"/>, which the replicator calls at queue positions, so the image is always a prefix
/// of the acknowledged history. Between commits, changes live in memory: writes to the same block are folded into
/// one upload, and the uploads of a commit run in parallel.
/// </summary>
public sealed partial class ObjectStoreFacet : IFacet, IStoreIdentity, IFolderHome
{
    private const int CheckpointEvery = 64;
    private const int CheckpointAtMost = 1024;
    /// <summary>
    /// Requests in flight at once (uploads of a commit, gets of a read or a restore). Extents are small objects: 64 of
    /// 64 KiB keep 4 MB in flight, twice what a 20 MB/s link with a 100 ms round trip holds.
    /// </summary>
    internal const int UploadWindow = 64;
    /// <summary>
    /// Superseded objects past retention that a landing collects at once, without waiting for a checkpoint: a burst of
    /// random writes frees thousands a second (256 of 256 KiB blocks is 64 MiB the remote holds for nothing), and a
    /// checkpoint may be 64 commits away. Fewer wait for the next checkpoint, or for the replicator's idle moment.
    /// </summary>
    internal const int CollectBatch = 256;

    /// <summary>
    /// When each read under way took its keys (<see cref="ReadAsync"/> takes an image's keys under the facet's lock and
    /// fetches them after letting go of it). A write that supersedes one of those blocks may land meanwhile; what it
    /// freed is not collected until every read that began before it has finished, or the read would find its objects
    /// gone ("missing; run verify --repair").
    /// </summary>
    private readonly Dictionary<long, DateTime> _reads = [];
    private long _readIds;

    /// <summary>How often the facet went back to its last landed image (<see cref="RewindLockedAsync"/>).</summary>
    private int _rewinds;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    private readonly IObjectStore _store;
    private readonly int _blockSize;
    private readonly string _volumeName;
    private readonly bool _createIfMissing;
    private readonly TimeSpan _retention;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<(RemoteNode Node, long Block), DirtyBlock> _dirty = [];
    private readonly List<JournalOp> _pending = [];
    private readonly List<string> _pendingFreed = [];
    /// <summary>Superseded objects not yet deleted, oldest first; changed only by the landing chain (and the open).</summary>
    private readonly List<GarbageEntry> _garbage = [];
    private RemoteManifest _working = new();
    private RemoteManifest _landed = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ReadOnlyMemory<byte>> _staging = new(StringComparer.Ordinal);
    private Task? _landing;
    private long _stagedCommit;
    private volatile bool _poisoned;
    private long _lastCheckpoint;
    private long _lastCheckpointBytes; // its size; 0 until this process writes one
    private long _journalBytesSinceCheckpoint;
    private long _lastQueueSeq;
    private int _format;
    private DateTime _rootTime = DateTime.UnixEpoch; // the manifest keeps no root node: the volume's creation stands in
    private bool _opened;
    private readonly string? _claimFor;
    private readonly bool _forceClaim;

    private RemoteClaim? _claim;

    /// <summary>Set when a commit found volume.json gone: the next open sets the store up again from nothing.</summary>
    private volatile bool _storeLost;

    /// <inheritdoc />
    public string? StoreIdentity { get; private set; }

    /// <summary>
    /// A facet over <paramref name="store"/>. With <paramref name="claimFor"/> (the volume's state folder) the facet
    /// claims the remote at open: one writer per remote.
    /// </summary>
    public ObjectStoreFacet(string name, string kind, IObjectStore store, int blockSize, string volumeName, bool createIfMissing = true, TimeSpan retention = default,
        string? claimFor = null, bool forceClaim = false)
    {
        _claimFor = claimFor;
        _forceClaim = forceClaim;
        Name = name;
        Kind = kind;
        _store = store;
        _blockSize = blockSize;
        _volumeName = volumeName;
        _createIfMissing = createIfMissing;
        _retention = retention;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string Kind { get; }

    /// <summary>The commit the remote image stands at.</summary>
    public long CommittedImage => _landed.Commit;

    /// <inheritdoc />
    public string? LastWriter { get; private set; }

    /// <inheritdoc />
    public string? Writer { get; set; }

    /// <summary>The queue sequence number the image covers.</summary>
    public long CommittedQueueSeq => _landed.QueueSeq;

    /// <summary>The store (decoding) behind this facet: verify reads the committed image from it, never from a cache.</summary>
    internal IObjectStore Store => _store;

    /// <inheritdoc />
    /// <remarks>A store kept in a folder (kind <c>folder</c>) knows it; null for the others.</remarks>
    public string? FileSystem
    {
        get => (IDecorator<IObjectStore>.Unwrap(_store) as IFolderHome)?.FileSystem;
        set
        {
            if (IDecorator<IObjectStore>.Unwrap(_store) is IFolderHome home)
            {
                home.FileSystem = value;
            }
        }
    }

    /// <summary>Objects uploaded so far (block objects and commits), for benchmarks.</summary>
    public long ObjectsUploaded => Interlocked.Read(ref _objectsUploaded);

    /// <summary>Bytes uploaded so far.</summary>
    public long BytesUploaded => Interlocked.Read(ref _bytesUploaded);

    private long _objectsUploaded;
    private long _bytesUploaded;

    /// <inheritdoc />
    public async ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _store.EnsureReadyAsync(_createIfMissing, cancellationToken).ConfigureAwait(false);
            if (_opened && _storeLost)
            {
                // Emptied under us: forget the image it held, then set it up afresh like a new store.
                await RewindLockedAsync().ConfigureAwait(false);
                if (_claim is not null)
                {
                    await _claim.DisposeAsync().ConfigureAwait(false);
                    _claim = null;
                }
                _garbage.Clear(); // keys of the store that was: nothing to collect in the new one
                _opened = false;
            }
            if (_opened)
            {
                // A reachability probe after an outage: the in-memory state is still right, unless a commit failed
                // to land, in which case the facet goes back to the last image that did.
                if (_poisoned)
                {
                    await RewindLockedAsync().ConfigureAwait(false);
                }
                return;
            }
            string? encryption = (_store as CodecObjectStore)?.EncryptionParameter;
            VolumeDescriptor descriptor = await RemoteImage.ReadOrCreateDescriptorAsync(_store, _blockSize, _volumeName, encryption, cancellationToken).ConfigureAwait(false);
            RemoteImage.CheckEncryption(_store, descriptor, encryption, Name);
            if (_store is CodecObjectStore codec)
            {
                codec.Checksums = descriptor.Format >= VolumeDescriptor.ChecksumFormat; // what the remote's creator reads
            }
            if (descriptor.BlockSize != _blockSize)
            {
                throw new MirrorException(MirrorError.InvalidArgument,
                    $"facet '{Name}' ({_store.Description}) holds a volume with block size {descriptor.BlockSize}, this volume uses {_blockSize}; point the facet at another prefix or folder");
            }
            if (_claimFor is not null)
            {
                _claim = await RemoteClaim.AcquireAsync(_store, _claimFor, _forceClaim, cancellationToken).ConfigureAwait(false);
            }
            RemoteImage image = await RemoteImage.LoadAsync(_store, null, cancellationToken).ConfigureAwait(false);
            // The block objects of a commit that never landed are looked for only when the last writer may have left
            // some (its claim was taken over, or there are no claims): listing every object of a large remote at each
            // mount cost seconds on a folder store, and thousands of requests on S3.
            await DropBeyondImageAsync(image.Manifest.Commit, scanData: _claim is not { TookOver: false }, cancellationToken).ConfigureAwait(false);
            _working = image.Manifest;
            _landed = image.Manifest.Clone();
            _garbage.Clear();
            _garbage.AddRange(image.Garbage); // what the last writer had not yet deleted: it stops or dies with garbage to go
            LastWriter = image.Manifest.Writer;
            _stagedCommit = image.Manifest.Commit;
            _lastCheckpoint = image.Checkpoint;
            _lastQueueSeq = _working.QueueSeq;
            _format = descriptor.Format;
            _rootTime = descriptor.CreatedUtc;
            StoreIdentity = descriptor.CreatedUtc.ToString("O", System.Globalization.CultureInfo.InvariantCulture);
            _storeLost = false;
            _opened = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Deletes journals, checkpoints and block objects numbered past the image: a damaged commit (a store that kept part of an
    /// interrupted upload) ends the chain, and this writer numbers its next commit after the image; a later commit
    /// left from before would otherwise chain onto the new one and splice an old change into the image.
    /// </summary>
    private async Task DropBeyondImageAsync(long imageCommit, bool scanData, CancellationToken cancellationToken)
    {
        var beyond = new List<string>();
        foreach (string prefix in new[] { RemoteImage.CommitsPrefix, RemoteImage.CheckpointsPrefix })
        {
            await foreach (ObjectInfo o in _store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            {
                if (RemoteImage.ParseNumber(o.Key) is { } n && n > imageCommit)
                {
                    beyond.Add(o.Key);
                }
            }
        }
        // Block objects uploaded for a commit that never landed (the writer died between its uploads and its commit
        // object): no image names them, and the next commit of that number uploads its own.
        if (scanData)
        {
            await foreach (ObjectInfo o in _store.ListAsync("data/", cancellationToken).ConfigureAwait(false))
            {
                int dot = o.Key.LastIndexOf('.');
                if (dot > 0 && long.TryParse(o.Key.AsSpan(dot + 1), System.Globalization.NumberStyles.AllowHexSpecifier, null, out long n) && n > imageCommit)
                {
                    beyond.Add(o.Key);
                }
            }
        }
        if (beyond.Count > 0)
        {
            await _store.DeleteManyAsync(beyond, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        VolumePath.Validate(path);
        await EnterToLookAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (path.Length == 0)
            {
                return _working.Root is { } root
                    ? ToInfo("", root)
                    : new NodeInfo("", NodeKind.Directory, 0, (UnixFileMode)0b111_101_101, _rootTime, _rootTime, _rootTime);
            }
            return _working.Nodes.TryGetValue(path, out RemoteNode? n) ? ToInfo(VolumePath.Name(path), n) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        VolumePath.Validate(path);
        await EnterToLookAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (path.Length > 0 && (!_working.Nodes.TryGetValue(path, out RemoteNode? dir) || dir.Kind != NodeKind.Directory))
            {
                throw new MirrorException(dir is null ? MirrorError.NotFound : MirrorError.NotDirectory, $"facet '{Name}': {path}: no such directory");
            }
            return [.. _working.ChildrenOf(path).Select(c => ToInfo(c.Name, c.Node))];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
        => ChangeAsync(new JournalOp { Op = "create", Path = file.Path, Id = file.Id, Mode = (int)mode, Time = DateTime.UtcNow }, cancellationToken);

    /// <inheritdoc />
    public ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
        => ChangeAsync(new JournalOp { Op = "mkdir", Path = path, Mode = (int)mode, Time = DateTime.UtcNow }, cancellationToken);

    /// <inheritdoc />
    public ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken)
    {
        VolumePath.ValidateLinkTarget(target);
        return ChangeAsync(new JournalOp { Op = "symlink", Path = link.Path, Id = link.Id, Target = target, Time = DateTime.UtcNow }, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken)
    {
        VolumePath.Validate(path);
        await EnterToLookAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_working.Nodes.TryGetValue(path, out RemoteNode? node))
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {(path.Length == 0 ? "/" : path)}: {(path.Length == 0 ? "the root directory is not a symbolic link" : "no such file or directory")}");
            }
            return node.Kind == NodeKind.Symlink ? node.Target ?? "" : throw new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {path}: not a symbolic link");
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        VolumePath.Validate(to);
        return ChangeAsync(new JournalOp { Op = "rename", Path = from, To = to }, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
        => ChangeAsync(new JournalOp { Op = "unlink", Path = file.Path }, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_working.Nodes.TryGetValue(path, out RemoteNode? node) && node.Kind != NodeKind.Directory)
            {
                // A symbolic link (to a directory or not) or a file: rmdir(2) refuses it.
                throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {path}: not a directory");
            }
            if (_working.HasChildren(path))
            {
                throw new MirrorException(MirrorError.NotEmpty, $"facet '{Name}': {path}: directory not empty");
            }
        }
        finally
        {
            _gate.Release();
        }
        await ChangeAsync(new JournalOp { Op = "rmdir", Path = path }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken)
    {
        VolumePath.Validate(file.Path);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemoteNode node = FileNode(file.Path);
            if (length < node.Length && length % _blockSize != 0)
            {
                // The block holding the new end keeps bytes past it in its object; make it dirty with them zeroed,
                // so a later extension reads zeros.
                DirtyBlock d = await GetDirtyAsync(node, length / _blockSize, cancellationToken).ConfigureAwait(false);
                d.Cut((int)(length % _blockSize));
            }
            foreach (var key in _dirty.Keys.Where(k => k.Node == node && k.Block * _blockSize >= length).ToList())
            {
                DropDirty(key);
            }
            ApplyLocked(new JournalOp { Op = "setlen", Path = file.Path, Length = length, BlockSize = _blockSize, Time = DateTime.UtcNow });
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Each block the range touches that holds committed or pending bytes gets the range as zeros: a zero extent at
    /// the next commit, which names no object, so nothing is uploaded for it and a block zeroed whole frees its
    /// objects. <paramref name="deallocate"/> makes no difference here.
    /// </remarks>
    public async ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken)
    {
        VolumePath.Validate(file.Path);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemoteNode node = FileNode(file.Path);
            long end = Math.Min(node.Length, offset + Math.Min(length, long.MaxValue - offset));
            for (long pos = offset; pos < end;)
            {
                long block = pos / _blockSize;
                int inBlock = (int)(pos % _blockSize);
                int n = (int)Math.Min(end - pos, _blockSize - inBlock);
                pos += n;
                if (!_dirty.ContainsKey((node, block)) && !node.Blocks.ContainsKey(block) && node.Extents?.ContainsKey(block) != true)
                {
                    continue; // nothing there but zeros already
                }
                // A block zeroed whole is never read back first, even one due for compaction.
                DirtyBlock d = n == _blockSize && !_dirty.ContainsKey((node, block))
                    ? _dirty[(node, block)] = new DirtyBlock(_blockSize, null)
                    : await GetDirtyAsync(node, block, cancellationToken).ConfigureAwait(false);
                d.Zero(inBlock, inBlock + n);
            }
            node.MTime = DateTime.UtcNow;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        return ChangeAsync(new JournalOp { Op = "attrs", Path = path, Mode = change.Mode is { } m ? (int)m : null, Time = change.LastWriteUtc }, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => WriteCoreAsync(file, offset, data, null, cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// Each block the write covers whole and that has no change pending yet keeps the lent bytes (a hold on
    /// <paramref name="owner"/>) until its commit has landed: the replicator's sequential writes reach the store with
    /// no copy in between.
    /// </remarks>
    public ValueTask WriteKeepingAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, IBufferOwner owner, CancellationToken cancellationToken)
        => WriteCoreAsync(file, offset, data, owner, cancellationToken);

    private async ValueTask WriteCoreAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, IBufferOwner? owner, CancellationToken cancellationToken)
    {
        VolumePath.Validate(file.Path);
        // A write into part of a block goes up as an extent, with no read of the block, except where the block already
        // carries many extent objects: then it is read back whole (base and extents) and goes up whole (compaction).
        // Those reads run first, outside the facet's lock, so the replicator's parallel writes keep many ranged gets
        // in flight on a long link.
        List<(long Block, BlockSource Source)> compact = [];
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemoteNode node = FileNode(file.Path);
            for (long pos = offset; pos < offset + data.Length;)
            {
                long block = pos / _blockSize;
                int inBlock = (int)(pos % _blockSize);
                int n = (int)Math.Min(offset + data.Length - pos, _blockSize - inBlock);
                bool whole = inBlock == 0 && (n == _blockSize || pos + n >= node.Length);
                if (!whole && !_dirty.ContainsKey((node, block)) && NeedsCompaction(node, block) && node.SourceOf(block) is { } source)
                {
                    compact.Add((block, source));
                }
                pos += n;
            }
        }
        finally
        {
            _gate.Release();
        }
        var fetched = new Dictionary<long, (BlockSource Source, byte[] Data)>();
        if (compact.Count > 0)
        {
            byte[][] got = await Task.WhenAll(compact.Select(c => ReadCommittedAsync(c.Source, cancellationToken).AsTask())).ConfigureAwait(false);
            for (int i = 0; i < compact.Count; i++)
            {
                fetched[compact[i].Block] = (compact[i].Source, got[i]);
            }
        }
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemoteNode node = FileNode(file.Path);
            long pos = offset;
            ReadOnlyMemory<byte> rest = data;
            while (!rest.IsEmpty)
            {
                long block = pos / _blockSize;
                int inBlock = (int)(pos % _blockSize);
                int n = Math.Min(rest.Length, _blockSize - inBlock);
                bool whole = inBlock == 0 && (n == _blockSize || pos + n >= node.Length);
                // What was read back counts only if the block's committed objects are still the ones read.
                byte[]? prefetched = fetched.TryGetValue(block, out var f) && node.SourceOf(block) is { } now && now.SameAs(f.Source) ? f.Data : null;
                if (owner is not null && n == _blockSize && !_dirty.ContainsKey((node, block)))
                {
                    _dirty[(node, block)] = DirtyBlock.Keeping(_blockSize, rest[..n], owner);
                }
                else
                {
                    DirtyBlock d = await GetDirtyAsync(node, block, cancellationToken, whole ? n : -1, prefetched).ConfigureAwait(false);
                    d.Write(inBlock, rest.Span[..n]);
                }
                pos += n;
                rest = rest[n..];
            }
            node.Length = Math.Max(node.Length, offset + data.Length);
            node.MTime = DateTime.UtcNow;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The keys are taken under the facet's lock and fetched after it is let go. If meanwhile the facet went back to its
    /// last landed image (a commit failed to land), a key of the commit given up may have been used again for other
    /// bytes by the commit after: the read then reads again, from the image the facet went back to, rather than lay a
    /// new object's bytes out by an old extent list.
    /// </remarks>
    public async ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        VolumePath.Validate(file.Path);
        for (int attempt = 1; ; attempt++)
        {
            int rewinds = Volatile.Read(ref _rewinds);
            try
            {
                int n = await ReadOnceAsync(file, offset, buffer, cancellationToken).ConfigureAwait(false);
                if (Volatile.Read(ref _rewinds) == rewinds || attempt == MaxReadAttempts)
                {
                    return n;
                }
            }
            catch (MirrorException) when (Volatile.Read(ref _rewinds) != rewinds && attempt < MaxReadAttempts)
            {
                // An object of the commit given up, gone with it: read the image the facet went back to.
            }
        }
    }

    /// <summary>Reads that overlap the facet going back to its last image are tried this often at most.</summary>
    private const int MaxReadAttempts = 4;

    private async ValueTask<int> ReadOnceAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var parts = new List<(int InBlock, int Count, int Into, DirtyBlock? Dirty, BlockSource? Source)>();
        var ahead = new List<string>();
        int total;
        long readId;
        await EnterToLookAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RemoteNode node = FileNode(file.Path);
            long end = Math.Min(node.Length, offset + buffer.Length);
            total = (int)Math.Max(0, end - offset);
            for (long pos = offset; pos < end;)
            {
                long block = pos / _blockSize;
                int inBlock = (int)(pos % _blockSize);
                int n = (int)Math.Min(end - pos, _blockSize - inBlock);
                _dirty.TryGetValue((node, block), out DirtyBlock? d);
                parts.Add((inBlock, n, (int)(pos - offset), d?.Snapshot(), d is { Full: true } ? null : node.SourceOf(block)));
                pos += n;
            }
            long next = (offset + buffer.Length + _blockSize - 1) / _blockSize;
            for (long b = next; b < next + ReadAheadBlocks; b++)
            {
                if (!_dirty.ContainsKey((node, b)) && node.SourceOf(b) is { } source)
                {
                    ahead.AddRange(source.Keys);
                }
            }
            // Last, still under the lock: nothing that could throw comes between this and the finally that ends it,
            // and no change that supersedes these keys can begin before the lock is let go.
            readId = BeginRead();
        }
        finally
        {
            _gate.Release();
        }
        try
        {
            await FetchAsync(buffer, parts, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            EndRead(readId);
        }
        ReadAhead(ahead);
        return total;
    }

    /// <summary>Notes a read that has taken its keys (under the facet's lock); <see cref="EndRead"/> once it has fetched them.</summary>
    private long BeginRead()
    {
        lock (_reads)
        {
            long id = ++_readIds;
            _reads[id] = DateTime.UtcNow;
            return id;
        }
    }

    private void EndRead(long id)
    {
        lock (_reads)
        {
            _reads.Remove(id);
        }
    }

    /// <summary>When the oldest read under way took its keys; <see cref="DateTime.MaxValue"/> when none is.</summary>
    private DateTime OldestRead()
    {
        lock (_reads)
        {
            return _reads.Count == 0 ? DateTime.MaxValue : _reads.Values.Min();
        }
    }

    private async Task FetchAsync(Memory<byte> buffer, List<(int InBlock, int Count, int Into, DirtyBlock? Dirty, BlockSource? Source)> parts, CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(parts, new ParallelOptions { MaxDegreeOfParallelism = UploadWindow, CancellationToken = cancellationToken }, async (p, ct) =>
        {
            Memory<byte> target = buffer.Slice(p.Into, p.Count);
            if (p.Dirty is null && p.Source is null)
            {
                target.Span.Clear();
                return;
            }
            if (p.Dirty is null && p.Source is { Base: { } key, Extents.Length: 0 })
            {
                // The common case, one object and nothing laid over it: copy the part asked for from the cached
                // object, instead of assembling the whole block first (a 4 KiB read cost a 256 KiB block).
                byte[] data = await GetBlockAsync(key, ct).ConfigureAwait(false);
                int available = Math.Clamp(data.Length - p.InBlock, 0, p.Count);
                data.AsSpan(Math.Min(p.InBlock, data.Length), available).CopyTo(target.Span);
                target.Span[available..].Clear(); // past a short object: zeros
                return;
            }
            byte[] whole = p.Source is null ? new byte[_blockSize] : await ReadCommittedAsync(p.Source, ct, cached: true).ConfigureAwait(false);
            p.Dirty?.OverlayOnto(whole);
            whole.AsMemory(p.InBlock, p.Count).CopyTo(target);
        }).ConfigureAwait(false);
    }

    /// <summary>A block's committed bytes, whole (base and extents), from the store or the block cache.</summary>
    private async ValueTask<byte[]> ReadCommittedAsync(BlockSource source, CancellationToken cancellationToken, bool cached = false)
    {
        byte[] block = GC.AllocateUninitializedArray<byte>(_blockSize); // AssembleAsync writes every byte
        await source.AssembleAsync(block, async (key, length, ct) => cached
            ? await GetBlockAsync(key, ct).ConfigureAwait(false)
            : await GetObjectAsync(key, 0, length, ct).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return block;
    }

    /// <summary>A block that already carries this many extent objects is read back and uploaded whole at its next change.</summary>
    private const int MaxExtentObjects = 8;

    private static bool NeedsCompaction(BlockSource source) => source.ExtentObjects >= MaxExtentObjects;

    /// <summary>
    /// The same test on the node, without copying its extents: the replicator asks it for every partial write, and
    /// a block with fewer extents than the limit cannot span that many objects.
    /// </summary>
    private static bool NeedsCompaction(RemoteNode node, long block)
        => node.Extents is not null && node.Extents.TryGetValue(block, out List<Extent>? extents) && extents.Count >= MaxExtentObjects
           && Extent.ObjectCount(extents) >= MaxExtentObjects;

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken) => CommitAsync(_lastQueueSeq, cancellationToken);

    /// <inheritdoc />
    public async ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        return new SpaceInfo(long.MaxValue / 2, long.MaxValue / 4);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_landing is { } landing)
        {
            // Uploads still running must not outlive the store.
            await landing.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default).ConfigureAwait(false);
        }
        if (_claim is not null)
        {
            if (_poisoned || _stagedCommit > _landed.Commit || _landing is { IsCompletedSuccessfully: false })
            {
                // A commit that did not land may have left block objects: the claim stays (stale), so the next open
                // takes it over and looks for them.
                await _claim.AbandonAsync().ConfigureAwait(false);
            }
            else
            {
                await _claim.DisposeAsync().ConfigureAwait(false);
            }
        }
        await _store.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>What a killed process leaves: the claim stays, its heartbeat stops (for tests).</summary>
    internal async Task AbandonClaimAsync()
    {
        if (_claim is not null)
        {
            await _claim.AbandonAsync().ConfigureAwait(false);
        }
    }

    private static NodeInfo ToInfo(string name, RemoteNode n) => n.Kind switch
    {
        NodeKind.Symlink => new(name, n.Kind, System.Text.Encoding.UTF8.GetByteCount(n.Target ?? ""), (UnixFileMode)0b111_111_111, n.MTime, n.MTime, n.MTime) { FileId = n.Id },
        _ => new(name, n.Kind, n.Kind == NodeKind.File ? n.Length : 0, (UnixFileMode)n.Mode, n.MTime, n.MTime, n.MTime) { FileId = n.Id },
    };

    private RemoteNode FileNode(string path)
    {
        if (!_working.Nodes.TryGetValue(path, out RemoteNode? node))
        {
            throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such file");
        }
        return node.Kind switch
        {
            NodeKind.File => node,
            NodeKind.Symlink => throw new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {path}: is a symbolic link, which holds no data"),
            _ => throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {path}: is a directory"),
        };
    }

    private async ValueTask ChangeAsync(JournalOp op, CancellationToken cancellationToken)
    {
        VolumePath.Validate(op.Path);
        await EnterAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            NodeKind? creates = op.Op switch { "create" => NodeKind.File, "mkdir" => NodeKind.Directory, "symlink" => NodeKind.Symlink, _ => null };
            if (creates is not null && _working.Nodes.TryGetValue(op.Path, out RemoteNode? existing) && existing.Kind != creates)
            {
                throw new MirrorException(MirrorError.Exists, $"facet '{Name}': {op.Path}: exists as a {existing.Kind}");
            }
            if (creates is not null && op.Path.Length == 0)
            {
                throw new MirrorException(MirrorError.Exists, $"facet '{Name}': the root directory exists");
            }
            if (creates is not null && VolumePath.Parent(op.Path) is { Length: > 0 } parent
                && (!_working.Nodes.TryGetValue(parent, out RemoteNode? p) || p.Kind != NodeKind.Directory))
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {parent}: no such directory");
            }
            // Folded writes of a file that goes away must not be uploaded at the next commit.
            RemoteNode? doomed = op.Op switch
            {
                "unlink" or "rmdir" => _working.Nodes.GetValueOrDefault(op.Path),
                "rename" when _working.Nodes.TryGetValue(op.To!, out RemoteNode? r) && !ReferenceEquals(r, _working.Nodes.GetValueOrDefault(op.Path)) => r,
                _ => null,
            };
            if (doomed is not null)
            {
                foreach (var key in _dirty.Keys.Where(k => k.Node == doomed).ToList())
                {
                    DropDirty(key);
                }
            }
            if (op.Op == "attrs" && op.Path.Length > 0 && !_working.Nodes.ContainsKey(op.Path))
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {op.Path}: no such file or directory");
            }
            ApplyLocked(op);
        }
        finally
        {
            _gate.Release();
        }
    }

    private void ApplyLocked(JournalOp op)
    {
        _working.Apply(op, _pendingFreed);
        _pending.Add(op);
    }

    /// <summary>Forgets a block's pending change (its file was cut short or removed).</summary>
    private void DropDirty((RemoteNode Node, long Block) key)
    {
        if (_dirty.Remove(key, out DirtyBlock? d))
        {
            d.Drop();
        }
    }

    /// <summary>
    /// The in-memory change to one block since the last commit. <see cref="Full"/>: the whole block is held (a write
    /// covered it, or it was read back to compact it), or kept without a copy from a buffer the writer lent (while
    /// <see cref="Holder"/> or whoever took it holds that buffer). Otherwise only the written pieces are held — memory
    /// in proportion to what was written, not to the block size — and the ranges that read as zeros (<see cref="Zeros"/>:
    /// a truncate, a zeroed range): they go up as extents over what is committed, with no read of the block.
    /// </summary>
    private sealed class DirtyBlock
    {
        private readonly int _size;
        private byte[]? _whole;
        private ReadOnlyMemory<byte> _kept; // the whole block, in a buffer the writer lent (Holder owns it)
        private List<(int Start, byte[] Bytes)> _pieces = [];

        public DirtyBlock(int size, byte[]? whole)
        {
            _size = size;
            _whole = whole;
        }

        /// <summary>A block written whole with bytes kept, not copied: <paramref name="owner"/> is held until <see cref="TakeHolder"/>'s taker lets go.</summary>
        public static DirtyBlock Keeping(int size, ReadOnlyMemory<byte> block, IBufferOwner owner)
        {
            owner.Retain();
            return new DirtyBlock(size, null) { _kept = block, Holder = owner };
        }

        public bool Full => _whole is not null || IsKept;

        /// <summary>True when the block's bytes are the lent ones (<see cref="Keeping"/>).</summary>
        private bool IsKept => !_kept.IsEmpty;

        /// <summary>The owner of the kept bytes this block holds; null when it holds none.</summary>
        public IBufferOwner? Holder { get; private set; }

        /// <summary>Hands the hold on the kept bytes to the caller (who releases it once nothing reads them).</summary>
        public IBufferOwner? TakeHolder()
        {
            IBufferOwner? h = Holder;
            Holder = null;
            return h;
        }

        /// <summary>Lets go of the kept bytes (the block is dropped).</summary>
        public void Drop() => TakeHolder()?.Release();

        /// <summary>Before a change in place: the kept bytes become a copy of the block's own.</summary>
        private void Own()
        {
            if (!IsKept)
            {
                return;
            }
            byte[] own = GC.AllocateUninitializedArray<byte>(_size);
            _kept.Span.CopyTo(own);
            _whole = own;
            _kept = default;
            Drop();
        }

        private List<(int Start, int End)> _zeros = [];

        /// <summary>The ranges that read as zeros (a truncate inside the block, a zeroed range), in order, none touching another; laid under the pieces.</summary>
        public IReadOnlyList<(int Start, int End)> Zeros => _zeros;

        /// <summary>The written pieces, in order, none touching another (empty when <see cref="Full"/>).</summary>
        public IReadOnlyList<(int Start, byte[] Bytes)> Pieces => _pieces;

        public void Write(int start, ReadOnlySpan<byte> data)
        {
            Own();
            if (_whole is not null)
            {
                data.CopyTo(_whole.AsSpan(start));
                return;
            }
            int end = start + data.Length;
            // The pieces this write overlaps or touches merge with it into one.
            int first = 0;
            while (first < _pieces.Count && _pieces[first].Start + _pieces[first].Bytes.Length < start)
            {
                first++;
            }
            int last = first;
            int mergedStart = start, mergedEnd = end;
            while (last < _pieces.Count && _pieces[last].Start <= end)
            {
                mergedStart = Math.Min(mergedStart, _pieces[last].Start);
                mergedEnd = Math.Max(mergedEnd, _pieces[last].Start + _pieces[last].Bytes.Length);
                last++;
            }
            if (mergedStart == 0 && mergedEnd >= _size)
            {
                // The block is now known whole: hold it as one.
                byte[] block = new byte[_size];
                OverlayOnto(block);
                data.CopyTo(block.AsSpan(start));
                _whole = block;
                _pieces = [];
                return;
            }
            byte[] merged = last - first == 1 && _pieces[first].Start == mergedStart && _pieces[first].Bytes.Length == mergedEnd - mergedStart
                ? _pieces[first].Bytes
                : new byte[mergedEnd - mergedStart];
            for (int i = first; i < last; i++)
            {
                if (!ReferenceEquals(_pieces[i].Bytes, merged))
                {
                    _pieces[i].Bytes.CopyTo(merged, _pieces[i].Start - mergedStart);
                }
            }
            data.CopyTo(merged.AsSpan(start - mergedStart));
            _pieces.RemoveRange(first, last - first);
            _pieces.Insert(first, (mergedStart, merged));
        }

        /// <summary>A truncate inside the block: everything from <paramref name="keep"/> on reads as zeros.</summary>
        public void Cut(int keep) => Zero(keep, _size);

        /// <summary>
        /// [<paramref name="start"/>, <paramref name="end"/>) reads as zeros. A block held whole and zeroed whole
        /// stops holding bytes: it goes up as one zero extent, not as a block of zeros.
        /// </summary>
        public void Zero(int start, int end)
        {
            if (start == 0 && end >= _size && Full)
            {
                Drop();
                _kept = default;
                _whole = null;
            }
            Own();
            if (_whole is not null)
            {
                Array.Clear(_whole, start, end - start);
                return;
            }
            for (int i = _pieces.Count - 1; i >= 0; i--)
            {
                var (s, bytes) = _pieces[i];
                int e = s + bytes.Length;
                if (e <= start || s >= end)
                {
                    continue;
                }
                _pieces.RemoveAt(i);
                if (end < e)
                {
                    _pieces.Insert(i, (end, bytes[(end - s)..]));
                }
                if (s < start)
                {
                    _pieces.Insert(i, (s, bytes[..(start - s)]));
                }
            }
            Intervals.Add(_zeros, start, end);
        }

        /// <summary>True when the block's bytes up to <paramref name="validEnd"/> are all known here.</summary>
        public bool Covers(int validEnd)
        {
            if (Full)
            {
                return true;
            }
            var known = _pieces.Select(p => (p.Start, p.Start + p.Bytes.Length)).ToList();
            foreach (var (s, e) in _zeros)
            {
                Intervals.Add(known, s, e);
            }
            return Intervals.Covers(known, 0, validEnd);
        }

        /// <summary>The whole block as known here (zeros where nothing is known; use when <see cref="Covers"/>).</summary>
        public ReadOnlyMemory<byte> Whole()
        {
            if (IsKept)
            {
                return _kept;
            }
            if (_whole is not null)
            {
                return _whole;
            }
            byte[] block = new byte[_size];
            OverlayOnto(block);
            return block;
        }

        /// <summary>Lays this change over a block's committed bytes (the whole block in <paramref name="block"/>).</summary>
        public void OverlayOnto(Span<byte> block)
        {
            if (IsKept)
            {
                _kept.Span.CopyTo(block);
                return;
            }
            if (_whole is not null)
            {
                _whole.CopyTo(block);
                return;
            }
            foreach (var (s, e) in _zeros)
            {
                if (s < block.Length)
                {
                    block[s..Math.Min(e, block.Length)].Clear();
                }
            }
            foreach (var (start, bytes) in _pieces)
            {
                bytes.CopyTo(block[start..]);
            }
        }

        public DirtyBlock Snapshot() => new(_size, IsKept ? _kept.ToArray() : (byte[]?)_whole?.Clone())
        {
            _zeros = [.. _zeros],
            _pieces = [.. _pieces.Select(p => (p.Start, (byte[])p.Bytes.Clone()))],
        };
    }
}
