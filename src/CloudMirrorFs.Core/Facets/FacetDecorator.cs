namespace CloudMirrorFs.Facets;

/// <summary>
/// The base of facet decorators (FASTER's device-wrapping shape): every call is forwarded to <see cref="Inner"/>
/// after <see cref="BeforeAsync"/>, which a decorator overrides to add a link's delay, a rate limit or a fault.
/// </summary>
public abstract class FacetDecorator : IFacet, IFacetDecorator
{
    /// <summary>Wraps <paramref name="inner"/>.</summary>
    protected FacetDecorator(IFacet inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
    }

    /// <summary>The facet behind this decorator.</summary>
    public IFacet Inner { get; }

    /// <summary>Runs before each call: <paramref name="bytes"/> of data move, sent to the facet when <paramref name="isWrite"/>.</summary>
    protected virtual ValueTask BeforeAsync(long bytes, bool isWrite, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>Runs after a write of <paramref name="bytes"/> succeeded.</summary>
    protected virtual void AfterWrite(long bytes)
    {
    }

    /// <inheritdoc />
    public string Name => Inner.Name;

    /// <inheritdoc />
    public string Kind => Inner.Kind;

    /// <inheritdoc />
    public virtual async ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.OpenAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        return await Inner.StatAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        return await Inner.ListAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.CreateFileAsync(file, mode, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.CreateDirectoryAsync(path, mode, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.CreateSymlinkAsync(link, target, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        return await Inner.ReadLinkAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.RenameAsync(from, to, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.DeleteFileAsync(file, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.DeleteDirectoryAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.SetLengthAsync(file, length, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.ZeroRangeAsync(file, offset, length, deallocate, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.SetAttributesAsync(path, change, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await BeforeAsync(data.Length, true, cancellationToken).ConfigureAwait(false);
        await Inner.WriteAsync(file, offset, data, cancellationToken).ConfigureAwait(false);
        AfterWrite(data.Length);
    }

    /// <inheritdoc />
    public virtual async ValueTask WriteKeepingAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, IBufferOwner owner, CancellationToken cancellationToken)
    {
        await BeforeAsync(data.Length, true, cancellationToken).ConfigureAwait(false);
        await Inner.WriteKeepingAsync(file, offset, data, owner, cancellationToken).ConfigureAwait(false);
        AfterWrite(data.Length);
    }

    /// <inheritdoc />
    public virtual async ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        await BeforeAsync(buffer.Length, false, cancellationToken).ConfigureAwait(false);
        return await Inner.ReadAsync(file, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask AllocateAsync(FileRef file, long offset, long length, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, true, cancellationToken).ConfigureAwait(false);
        await Inner.AllocateAsync(file, offset, length, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask FlushFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.FlushFileAsync(file, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.CommitAsync(queueSeq, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<Task> BeginCommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        return await Inner.BeginCommitAsync(queueSeq, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual void AbandonUncommitted() => Inner.AbandonUncommitted();

    /// <inheritdoc />
    public virtual async ValueTask CollectAsync(CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        await Inner.CollectAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false);
        return await Inner.GetSpaceAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual async ValueTask<UInt128?> HashBlockAsync(FileRef file, long offset, int length, CancellationToken cancellationToken)
    {
        await BeforeAsync(0, false, cancellationToken).ConfigureAwait(false); // one round trip: the hashing happens at the far end
        return await Inner.HashBlockAsync(file, offset, length, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public virtual ValueTask DisposeAsync() => Inner.DisposeAsync();
}
