using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Tests.Support;

/// <summary>A decorator that makes a facet fail on demand: a dead disk, bad sectors, silent corruption.</summary>
public sealed class FaultInjectingFacet : IFacet, IFacetDecorator
{
    private int _writes;
    private int _reads;

    public FaultInjectingFacet(IFacet inner) => Inner = inner;

    public IFacet Inner { get; }

    /// <summary>(file, offset, length) → true to fail that write with an I/O error.</summary>
    public Func<FileRef, long, int, bool>? FailWrite { get; set; }

    /// <summary>(file, offset, length) → true to fail that read with an I/O error.</summary>
    public Func<FileRef, long, int, bool>? FailRead { get; set; }

    /// <summary>(file, offset, length) → true to flip bits in the bytes returned (silent bad data).</summary>
    public Func<FileRef, long, int, bool>? CorruptRead { get; set; }

    /// <summary>Every call fails as a device that is gone.</summary>
    public bool Offline { get; set; }

    public int WriteCount => Volatile.Read(ref _writes);

    public int ReadCount => Volatile.Read(ref _reads);

    public string Name => Inner.Name;

    public string Kind => Inner.Kind;

    private void Check()
    {
        if (Offline)
        {
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': injected failure: the device is gone");
        }
    }

    public ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        Check();
        return Inner.OpenAsync(cancellationToken);
    }

    public ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        Check();
        return Inner.StatAsync(path, cancellationToken);
    }

    public ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        Check();
        return Inner.ListAsync(path, cancellationToken);
    }

    public ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
    {
        Check();
        return Inner.CreateFileAsync(file, mode, cancellationToken);
    }

    public ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        Check();
        return Inner.CreateDirectoryAsync(path, mode, cancellationToken);
    }

    public ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken)
    {
        Check();
        return Inner.CreateSymlinkAsync(link, target, cancellationToken);
    }

    public ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken)
    {
        Check();
        return Inner.ReadLinkAsync(path, cancellationToken);
    }

    public ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        Check();
        return Inner.RenameAsync(from, to, cancellationToken);
    }

    public ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        Check();
        return Inner.DeleteFileAsync(file, cancellationToken);
    }

    public ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        Check();
        return Inner.DeleteDirectoryAsync(path, cancellationToken);
    }

    public ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken)
    {
        Check();
        return Inner.SetLengthAsync(file, length, cancellationToken);
    }

    public ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken)
    {
        Check();
        if (FailWrite?.Invoke(file, offset, (int)Math.Min(length, int.MaxValue)) == true)
        {
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': injected write failure at {file.Path} offset {offset}");
        }
        return Inner.ZeroRangeAsync(file, offset, length, deallocate, cancellationToken);
    }

    public ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        Check();
        return Inner.SetAttributesAsync(path, change, cancellationToken);
    }

    public ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        BeforeWrite(file, offset, data.Length);
        return Inner.WriteAsync(file, offset, data, cancellationToken);
    }

    public ValueTask WriteKeepingAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, IBufferOwner owner, CancellationToken cancellationToken)
    {
        BeforeWrite(file, offset, data.Length);
        return Inner.WriteKeepingAsync(file, offset, data, owner, cancellationToken);
    }

    private void BeforeWrite(FileRef file, long offset, int length)
    {
        Check();
        Interlocked.Increment(ref _writes);
        if (FailWrite?.Invoke(file, offset, length) == true)
        {
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': injected write failure at {file.Path} offset {offset}");
        }
    }

    public async ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        Check();
        Interlocked.Increment(ref _reads);
        if (FailRead?.Invoke(file, offset, buffer.Length) == true)
        {
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': injected read failure at {file.Path} offset {offset}");
        }
        int n = await Inner.ReadAsync(file, offset, buffer, cancellationToken);
        if (n > 0 && CorruptRead?.Invoke(file, offset, n) == true)
        {
            buffer.Span[n / 2] ^= 0x5A;
        }
        return n;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Check();
        return Inner.FlushAsync(cancellationToken);
    }

    public ValueTask AllocateAsync(FileRef file, long offset, long length, CancellationToken cancellationToken)
    {
        Check();
        return Inner.AllocateAsync(file, offset, length, cancellationToken);
    }

    public ValueTask FlushFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        Check();
        return Inner.FlushFileAsync(file, cancellationToken);
    }

    public ValueTask CommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        Check();
        return Inner.CommitAsync(queueSeq, cancellationToken);
    }

    public async ValueTask<Task> BeginCommitAsync(long queueSeq, CancellationToken cancellationToken)
    {
        Check();
        return await Inner.BeginCommitAsync(queueSeq, cancellationToken);
    }



    public void AbandonUncommitted() => Inner.AbandonUncommitted();

    public ValueTask CollectAsync(CancellationToken cancellationToken)
    {
        Check();
        return Inner.CollectAsync(cancellationToken);
    }

    public ValueTask<UInt128?> HashBlockAsync(FileRef file, long offset, int length, CancellationToken cancellationToken)
        => Offline ? throw new MirrorException(MirrorError.Unavailable, $"facet '{Name}' is offline (injected)") : Inner.HashBlockAsync(file, offset, length, cancellationToken);

    public ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken)
    {
        Check();
        return Inner.GetSpaceAsync(cancellationToken);
    }

    public ValueTask DisposeAsync() => Inner.DisposeAsync();
}
