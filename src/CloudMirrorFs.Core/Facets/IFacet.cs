namespace CloudMirrorFs.Facets;

/// <summary>
/// One full copy of the volume. Every implementation runs the same contract test suite.
/// Paths are volume-relative, '/'-separated, without a leading slash; "" is the root.
/// All failures surface as <see cref="MirrorException"/>. Namespace operations are idempotent where a replay
/// after a crash could repeat them: creating what exists with the same kind, deleting what is gone, and
/// renaming a source that is gone onto a destination that exists all succeed.
/// Symbolic links are nodes like any other: a facet stores a link's target verbatim and never follows a link, not
/// in the last component of a path (stat, list, delete and rename act on the link itself) nor in a parent.
/// </summary>
public interface IFacet : IAsyncDisposable
{
    /// <summary>The facet's name in the volume configuration.</summary>
    string Name { get; }

    /// <summary>The facet kind as the configuration names it (<c>directory</c>, <c>folder</c>, <c>s3</c>, <c>azure</c>).</summary>
    string Kind { get; }

    /// <summary>Checks that the facet is reachable and usable, creating its root when allowed.</summary>
    ValueTask OpenAsync(CancellationToken cancellationToken);

    /// <summary>Returns the attributes of a node, or null when it does not exist.</summary>
    ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken);

    /// <summary>Lists a directory's children (not "." or "..").</summary>
    ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken);

    /// <summary>Creates an empty file (or truncates nothing if it already exists as a file).</summary>
    ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken);

    /// <summary>Creates a directory (succeeds if it already exists as a directory).</summary>
    ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken);

    /// <summary>
    /// Creates a symbolic link at <paramref name="link"/>'s path holding <paramref name="target"/> verbatim (never
    /// resolved). Succeeds if a symbolic link is already there, whose target then becomes <paramref name="target"/>
    /// (a replay ends in the state of the last change); a file or directory there is refused (Exists).
    /// </summary>
    ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken);

    /// <summary>Returns a symbolic link's target (NotFound when nothing is there, InvalidArgument when it is not a link).</summary>
    ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken);

    /// <summary>Renames a file, directory or symbolic link, replacing a destination file, link or empty directory.</summary>
    ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken);

    /// <summary>Deletes a file or a symbolic link (the link itself, never what it points to; succeeds if it is already gone).</summary>
    ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken);

    /// <summary>Deletes an empty directory (succeeds if it is already gone).</summary>
    ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken);

    /// <summary>Sets a file's length, extending with zeros (sparse where the store allows) or cutting.</summary>
    ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the bytes of [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) that lie
    /// within the file's length read as zeros; the length does not change (bytes past it stay past it). With
    /// <paramref name="deallocate"/> a facet that can frees the range's space (a hole); without, it keeps it allocated.
    /// </summary>
    ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken);

    /// <summary>
    /// Reserves the space of a range (<c>posix_fallocate</c>): writes into it then do not fail for lack of space. The
    /// length does not change (the caller sets it), nor do the bytes. By default nothing is reserved: a facet that
    /// stores objects has no space to set aside for a file.
    /// </summary>
    ValueTask AllocateAsync(FileRef file, long offset, long length, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Applies the non-null members of <paramref name="change"/>.</summary>
    ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken);

    /// <summary>Writes bytes at an offset, extending the file as needed.</summary>
    ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Writes like <see cref="WriteAsync"/>, with bytes that <paramref name="owner"/> keeps unchanged while a hold is
    /// taken on them (<see cref="IBufferOwner"/>): a facet that holds a write until a later commit may keep a
    /// reference instead of a copy. The replicator passes the queue's own records this way. By default, the bytes are
    /// copied like any write's.
    /// </summary>
    ValueTask WriteKeepingAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, IBufferOwner owner, CancellationToken cancellationToken)
        => WriteAsync(file, offset, data, cancellationToken);

    /// <summary>Reads up to <paramref name="buffer"/>'s length at an offset; returns the count read (short at end of file).</summary>
    ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>The barrier: returns once everything written so far is on stable storage.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>
    /// One file's barrier (fsync of a file, or of a directory): returns once the bytes written to
    /// <paramref name="file"/> so far, and every name change made so far, are on stable storage. Other files' bytes
    /// may stay in the OS cache, so a program's fsync of a small file does not wait for another's large write. By
    /// default, the whole barrier (<see cref="FlushAsync"/>).
    /// </summary>
    ValueTask FlushFileAsync(FileRef file, CancellationToken cancellationToken) => FlushAsync(cancellationToken);

    /// <summary>
    /// A commit point: everything applied so far is the volume as of queue sequence number <paramref name="queueSeq"/>
    /// (a prefix of the acknowledged history). Facets that publish images (object stores) make it their new image,
    /// durably, before returning; facets edited in place do nothing.
    /// </summary>
    ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// A commit point whose landing may overlap what the caller does next: returns once the facet has taken everything
    /// applied so far (later changes may be applied at once), with a task that completes when the commit is durable,
    /// as <see cref="CommitAsync"/> is on its return. Commits land in the order begun; one that fails fails every later
    /// one, and the facet then refuses changes until it is opened again (a probe), after which the caller applies
    /// again everything since the last commit that landed. By default the commit lands before this returns.
    /// </summary>
    async ValueTask<Task> BeginCommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await CommitAsync(queueSeq, cancellationToken).ConfigureAwait(false);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The caller gives up on what it applied since the last commit it began (a batch that failed part way; it applies
    /// that again from its queue). A facet that publishes images must not commit that part with a shorter batch, or
    /// its image would hold changes from past the commit's queue position: an object store refuses changes until its
    /// next probe and then goes back to its last landed image. Facets edited in place do nothing.
    /// </summary>
    void AbandonUncommitted()
    {
    }

    /// <summary>
    /// Deletes what no image within retention needs any more (an object store's superseded block versions); the
    /// replicator calls it when nothing waits for the facet. Facets edited in place have nothing to collect. A store
    /// that fails leaves the work for the next call.
    /// </summary>
    ValueTask CollectAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Capacity of the store, for statfs.</summary>
    ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken);

    /// <summary>
    /// A hash of <paramref name="length"/> bytes at <paramref name="offset"/>, computed where the bytes are (DRBD's
    /// csums-alg): a fast resync skips a block whose hash matches the source's. Null when the facet cannot tell cheaply;
    /// a missing file or a short read hashes what is there.
    /// </summary>
    ValueTask<UInt128?> HashBlockAsync(FileRef file, long offset, int length, CancellationToken cancellationToken) => ValueTask.FromResult<UInt128?>(null);
}
