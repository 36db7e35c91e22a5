using System.Text.Json;

namespace CloudMirrorFs.Objects;

/// <summary>
/// One writer per remote: a mount claims the remote with a write-once claim object (<c>claims/TICKS-ID.json</c>)
/// and keeps a heartbeat (<c>heartbeats/ID.json</c>, rewritten every few seconds). The earliest live claim wins. A
/// stale claim from the same host and state folder (a process killed with SIGKILL) is taken over at once; a live
/// claim from elsewhere is refused with a message naming its holder, unless forced.
/// </summary>
internal sealed class RemoteClaim : IAsyncDisposable
{
    public const string ClaimsPrefix = "claims/";
    public const string HeartbeatsPrefix = "heartbeats/";
    public static readonly TimeSpan HeartbeatEvery = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan StaleAfter = TimeSpan.FromSeconds(30);

    private readonly IObjectStore _store;
    private readonly ClaimRecord _mine;
    private readonly CancellationTokenSource _stop = new();
    private Task? _heartbeat;

    private RemoteClaim(IObjectStore store, ClaimRecord mine)
    {
        _store = store;
        _mine = mine;
    }

    /// <summary>
    /// True when an earlier writer's claim was found and taken over: that writer did not give the remote up cleanly
    /// (killed, unreachable at its close, or a commit of its never landed), so it may have left uploads behind.
    /// False when the remote was free: its last writer closed with every commit landed.
    /// </summary>
    public bool TookOver { get; private set; }

    /// <summary>Who holds a claim.</summary>
    public sealed record ClaimRecord(string Id, string Host, string StateDir, int ProcessId, DateTime StartedUtc);

    private string ClaimKey => $"{ClaimsPrefix}{_mine.StartedUtc.Ticks:D20}-{_mine.Id}.json";

    private string HeartbeatKey => $"{HeartbeatsPrefix}{_mine.Id}.json";

    /// <summary>Claims <paramref name="store"/> for this host and state folder, or throws naming the live holder.</summary>
    public static async Task<RemoteClaim> AcquireAsync(IObjectStore store, string stateDir, bool force, CancellationToken cancellationToken)
    {
        var mine = new ClaimRecord(Guid.NewGuid().ToString("N")[..16], Environment.MachineName, stateDir, Environment.ProcessId, DateTime.UtcNow);
        var claim = new RemoteClaim(store, mine);
        await claim.BeatAsync(cancellationToken).ConfigureAwait(false);
        await store.PutAsync(claim.ClaimKey, JsonSerializer.SerializeToUtf8Bytes(mine), cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var (key, other) in await ListClaimsAsync(store, cancellationToken).ConfigureAwait(false))
            {
                if (other is null)
                {
                    // Damaged (a holder killed in the middle of putting it): it names no one, and no one heartbeats it.
                    string id = key[(key.LastIndexOf('-') + 1)..^".json".Length];
                    await store.DeleteManyAsync([key, $"{HeartbeatsPrefix}{id}.json"], cancellationToken).ConfigureAwait(false);
                    claim.TookOver = true;
                    continue;
                }
                if (other.Id == mine.Id)
                {
                    break; // every earlier claim has been looked at: this one is the earliest live one
                }
                bool sameOwner = other.Host == mine.Host && other.StateDir == mine.StateDir;
                bool live = !sameOwner && await IsLiveAsync(store, other, cancellationToken).ConfigureAwait(false);
                if (live && !force)
                {
                    throw new MirrorException(MirrorError.AccessDenied,
                        $"{store.Description} is in use by another cmfs: host {other.Host}, state {other.StateDir}, process {other.ProcessId}, since {other.StartedUtc:u}; stop it, or take the remote over with --force if that machine is gone");
                }
                // Stale, ours from before a kill, or forced: take it over.
                await store.DeleteManyAsync([key, $"{HeartbeatsPrefix}{other.Id}.json"], cancellationToken).ConfigureAwait(false);
                claim.TookOver = true;
            }
        }
        catch
        {
            await store.DeleteManyAsync([claim.ClaimKey, claim.HeartbeatKey], CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        claim._heartbeat = Task.Run(() => claim.HeartbeatLoopAsync(claim._stop.Token));
        return claim;
    }

    /// <summary>Stops the heartbeat without giving the claim up (what a killed process leaves behind; for tests).</summary>
    internal async Task AbandonAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await (_heartbeat ?? Task.CompletedTask).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await AbandonAsync().ConfigureAwait(false);
        try
        {
            await _store.DeleteManyAsync([ClaimKey, HeartbeatKey], CancellationToken.None).ConfigureAwait(false);
        }
        catch (MirrorException)
        {
            // Unreachable at close: the claim goes stale and is taken over later.
        }
        _stop.Dispose();
    }

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(HeartbeatEvery, cancellationToken).ConfigureAwait(false);
                await BeatAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (MirrorException)
            {
                // The link is down: the replicator reports that; the heartbeat tries again next round.
            }
        }
    }

    private ValueTask BeatAsync(CancellationToken cancellationToken)
        => _store.PutAsync(HeartbeatKey, JsonSerializer.SerializeToUtf8Bytes(DateTime.UtcNow), cancellationToken);

    /// <summary>Every claim in start-time order; a damaged one (null) is listed so that it can be cleared.</summary>
    private static async Task<List<(string Key, ClaimRecord? Claim)>> ListClaimsAsync(IObjectStore store, CancellationToken cancellationToken)
    {
        var result = new List<(string, ClaimRecord?)>();
        await foreach (ObjectInfo o in store.ListAsync(ClaimsPrefix, cancellationToken).ConfigureAwait(false))
        {
            var (found, claim, _) = await RemoteImage.TryReadJsonAsync<ClaimRecord>(store, o.Key, cancellationToken).ConfigureAwait(false);
            if (found)
            {
                result.Add((o.Key, claim));
            }
        }
        return result; // ordinal key order is start-time order (zero-padded ticks)
    }

    private static async Task<bool> IsLiveAsync(IObjectStore store, ClaimRecord claim, CancellationToken cancellationToken)
    {
        string key = $"{HeartbeatsPrefix}{claim.Id}.json";
        for (int attempt = 0; ; attempt++)
        {
            var (found, beat, _) = await RemoteImage.TryReadJsonAsync<DateTime?>(store, key, cancellationToken).ConfigureAwait(false);
            if (!found)
            {
                return false;
            }
            if (beat is { } at)
            {
                return DateTime.UtcNow - at < StaleAfter;
            }
            if (attempt == 1)
            {
                return false; // still damaged a beat later: its writer died in the middle of the put
            }
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false); // perhaps being rewritten right now
        }
    }
}
