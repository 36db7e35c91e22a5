using System.Buffers;
using System.Threading.Channels;

namespace CloudMirrorFs.Replication;

/// <summary>
/// The seed's Figure 7: a copy in which the next read is issued while the previous write is in flight, through a
/// bounded set of buffers (<c>depth</c>): never one block at a time, never unbounded. Buffers are pooled.
/// </summary>
internal static class PipelinedCopy
{
    /// <summary>
    /// Reads each location with <paramref name="read"/> (returns the byte count, 0 or less to skip) and hands the
    /// bytes to <paramref name="write"/>, in order, with up to <paramref name="depth"/> blocks read ahead.
    /// </summary>
    public static async Task RunAsync<T>(IReadOnlyList<T> items, int blockSize, int depth,
        Func<T, Memory<byte>, CancellationToken, ValueTask<int>> read,
        Func<T, ReadOnlyMemory<byte>, CancellationToken, ValueTask> write,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        if (items.Count == 0)
        {
            return;
        }
        var filled = Channel.CreateBounded<(T Item, byte[] Buffer, int Length)>(new BoundedChannelOptions(depth)
        {
            SingleReader = true,
            SingleWriter = true,
        });
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task reader = Task.Run(async () =>
        {
            try
            {
                foreach (T item in items)
                {
                    byte[] buffer = ArrayPool<byte>.Shared.Rent(blockSize);
                    int n;
                    try
                    {
                        n = await read(item, buffer.AsMemory(0, blockSize), failed.Token).ConfigureAwait(false);
                        await filled.Writer.WriteAsync((item, buffer, n), failed.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                        throw;
                    }
                }
                filled.Writer.Complete();
            }
            catch (Exception e)
            {
                filled.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        try
        {
            await foreach ((T item, byte[] buffer, int length) in filled.Reader.ReadAllAsync(failed.Token).ConfigureAwait(false))
            {
                try
                {
                    if (length > 0)
                    {
                        await write(item, buffer.AsMemory(0, length), failed.Token).ConfigureAwait(false);
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch
        {
            await failed.CancelAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            await reader.ConfigureAwait(false);
            while (filled.Reader.TryRead(out var left))
            {
                ArrayPool<byte>.Shared.Return(left.Buffer);
            }
        }
    }
}
