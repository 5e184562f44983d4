// PocketBase peer for the cvx benchmarks: stock PocketBase (a Go module
// from the module proxy) with the bench collections created at start and a
// few custom routes for the workloads its records API cannot express as one
// transaction.
//
//	bench_users {name, email, n}  index on n      (a) GET /api/collections/bench_users/records/:id
//	                                              (b) GET /api/collections/bench_users/records?filter=n>=X&sort=n&perPage=100&skipTotal=1
//	events   {kind, n, payload}                   (c) POST /api/collections/events/records
//	counters {name, count}        index on name   (d) POST /api/bench/incr {name}         (transaction)
//	accounts {n, balance}         index on n      (h) POST /api/bench/transfer {from,to,amount} (transaction)
//	                                              (e) POST /api/bench/act_insert {n}      (route -> in-process insert)
//
// ("users" is PocketBase's built-in auth collection, hence bench_users.)
// Every collection has public API rules (no auth), like the cvx functions.
// The data database runs with synchronous=FULL (PocketBase's default is
// NORMAL, which may lose the last commits on power loss) so that every
// acknowledged write is durable, as in cvx and the Node peer. Request
// logging (a write into auxiliary.db per request) is turned off.
//
// usage: pbbench serve --dir DIR --http 127.0.0.1:PORT
package main

import (
	"log"
	"net/http"
	"strconv"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
)

func dbConnect(dbPath string) (*dbx.DB, error) {
	sync := "NORMAL"
	if strings.HasSuffix(dbPath, "data.db") {
		sync = "FULL"
	}
	pragmas := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=journal_size_limit(200000000)&_pragma=synchronous(" + sync + ")&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-32000)"
	return dbx.Open("sqlite", dbPath+pragmas)
}

func ensureCollection(app core.App, name string, fields []core.Field, index string) error {
	if _, err := app.FindCollectionByNameOrId(name); err == nil {
		return nil
	}
	c := core.NewBaseCollection(name)
	public := types.Pointer("")
	c.ListRule, c.ViewRule, c.CreateRule, c.UpdateRule = public, public, public, public
	for _, f := range fields {
		c.Fields.Add(f)
	}
	if index != "" {
		c.AddIndex("idx_"+name+"_"+index, false, index, "")
	}
	return app.Save(c)
}

type seedReq struct {
	Start   float64 `json:"start"`
	Count   int     `json:"count"`
	Balance float64 `json:"balance"`
}

func main() {
	app := pocketbase.NewWithConfig(pocketbase.Config{DBConnect: dbConnect})

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.InstallerFunc = nil
		settings := se.App.Settings()
		if settings.Logs.MaxDays != 0 {
			settings.Logs.MaxDays = 0
			if err := se.App.Save(settings); err != nil {
				return err
			}
		}
		if err := ensureCollection(se.App, "bench_users", []core.Field{
			&core.TextField{Name: "name"}, &core.TextField{Name: "email"}, &core.NumberField{Name: "n"},
		}, "n"); err != nil {
			return err
		}
		if err := ensureCollection(se.App, "events", []core.Field{
			&core.TextField{Name: "kind"}, &core.NumberField{Name: "n"}, &core.TextField{Name: "payload"},
		}, ""); err != nil {
			return err
		}
		if err := ensureCollection(se.App, "counters", []core.Field{
			&core.TextField{Name: "name"}, &core.NumberField{Name: "count"},
		}, "name"); err != nil {
			return err
		}
		if err := ensureCollection(se.App, "accounts", []core.Field{
			&core.NumberField{Name: "n"}, &core.NumberField{Name: "balance"},
		}, "n"); err != nil {
			return err
		}

		se.Router.POST("/api/bench/seed_users", func(e *core.RequestEvent) error {
			var req seedReq
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			ids := make([]string, 0, req.Count)
			err := e.App.RunInTransaction(func(tx core.App) error {
				col, err := tx.FindCollectionByNameOrId("bench_users")
				if err != nil {
					return err
				}
				for i := 0; i < req.Count; i++ {
					n := req.Start + float64(i)
					r := core.NewRecord(col)
					r.Set("name", "user "+ftoa(n))
					r.Set("email", "user"+ftoa(n)+"@example.com")
					r.Set("n", n)
					if err := tx.Save(r); err != nil {
						return err
					}
					ids = append(ids, r.Id)
				}
				return nil
			})
			if err != nil {
				return e.InternalServerError("seed failed", err)
			}
			return e.JSON(http.StatusOK, ids)
		})

		se.Router.POST("/api/bench/seed_accounts", func(e *core.RequestEvent) error {
			var req seedReq
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			err := e.App.RunInTransaction(func(tx core.App) error {
				col, err := tx.FindCollectionByNameOrId("accounts")
				if err != nil {
					return err
				}
				for i := 0; i < req.Count; i++ {
					r := core.NewRecord(col)
					r.Set("n", req.Start+float64(i))
					r.Set("balance", req.Balance)
					if err := tx.Save(r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return e.InternalServerError("seed failed", err)
			}
			return e.JSON(http.StatusOK, req.Count)
		})

		se.Router.POST("/api/bench/balance_sum", func(e *core.RequestEvent) error {
			var req seedReq
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			var sum float64
			err := e.App.DB().NewQuery("SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE n >= {:a} AND n < {:b}").
				Bind(dbx.Params{"a": req.Start, "b": req.Start + float64(req.Count)}).Row(&sum)
			if err != nil {
				return e.InternalServerError("sum failed", err)
			}
			return e.JSON(http.StatusOK, sum)
		})

		// The transfer invariant (bench/README.md): the sum of n * (balance -
		// base), compared with the sum of (to - from) over acknowledged transfers.
		se.Router.POST("/api/bench/balance_wsum", func(e *core.RequestEvent) error {
			var req struct {
				Start float64 `json:"start"`
				Count float64 `json:"count"`
				Base  float64 `json:"base"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			var sum float64
			err := e.App.DB().NewQuery("SELECT COALESCE(SUM(n * (balance - {:base})), 0) FROM accounts WHERE n >= {:a} AND n < {:b}").
				Bind(dbx.Params{"base": req.Base, "a": req.Start, "b": req.Start + req.Count}).Row(&sum)
			if err != nil {
				return e.InternalServerError("sum failed", err)
			}
			return e.JSON(http.StatusOK, sum)
		})

		// The counter invariant: the value of counter {name} (read after the window).
		se.Router.POST("/api/bench/counter", func(e *core.RequestEvent) error {
			var req struct {
				Name string `json:"name"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			r, err := e.App.FindFirstRecordByData("counters", "name", req.Name)
			if err != nil {
				return e.JSON(http.StatusOK, 0)
			}
			return e.JSON(http.StatusOK, r.GetFloat("count"))
		})

		// (i) The read of the 90/10 mix: one account by n, the lookup a transfer makes.
		se.Router.POST("/api/bench/account", func(e *core.RequestEvent) error {
			var req struct {
				N float64 `json:"n"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			r, err := e.App.FindFirstRecordByData("accounts", "n", req.N)
			if err != nil {
				return e.NotFoundError("no such account", err)
			}
			return e.JSON(http.StatusOK, map[string]any{"value": map[string]any{"id": r.Id, "n": r.GetFloat("n"), "balance": r.GetFloat("balance")}})
		})

		se.Router.POST("/api/bench/incr", func(e *core.RequestEvent) error {
			var req struct {
				Name string `json:"name"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			var count float64
			err := e.App.RunInTransaction(func(tx core.App) error {
				r, err := tx.FindFirstRecordByData("counters", "name", req.Name)
				if err != nil {
					col, err := tx.FindCollectionByNameOrId("counters")
					if err != nil {
						return err
					}
					r = core.NewRecord(col)
					r.Set("name", req.Name)
				}
				count = r.GetFloat("count") + 1
				r.Set("count", count)
				return tx.Save(r)
			})
			if err != nil {
				return e.InternalServerError("incr failed", err)
			}
			return e.JSON(http.StatusOK, map[string]any{"value": count})
		})

		se.Router.POST("/api/bench/act_insert", func(e *core.RequestEvent) error {
			var req struct {
				N float64 `json:"n"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			col, err := e.App.FindCollectionByNameOrId("events")
			if err != nil {
				return err
			}
			r := core.NewRecord(col)
			r.Set("kind", "bench")
			r.Set("n", req.N)
			r.Set("payload", "0123456789abcdef0123456789abcdef")
			if err := e.App.Save(r); err != nil {
				return e.InternalServerError("insert failed", err)
			}
			return e.JSON(http.StatusOK, map[string]any{"value": r.Id})
		})

		se.Router.POST("/api/bench/transfer", func(e *core.RequestEvent) error {
			var req struct {
				From   float64 `json:"from"`
				To     float64 `json:"to"`
				Amount float64 `json:"amount"`
			}
			if err := e.BindBody(&req); err != nil {
				return e.BadRequestError("bad body", err)
			}
			moved := false
			err := e.App.RunInTransaction(func(tx core.App) error {
				if req.From == req.To || req.Amount <= 0 {
					return nil
				}
				a, err := tx.FindFirstRecordByData("accounts", "n", req.From)
				if err != nil {
					return nil
				}
				b, err := tx.FindFirstRecordByData("accounts", "n", req.To)
				if err != nil {
					return nil
				}
				ab, bb := a.GetFloat("balance"), b.GetFloat("balance")
				if ab < req.Amount {
					return nil
				}
				a.Set("balance", ab-req.Amount)
				b.Set("balance", bb+req.Amount)
				if err := tx.Save(a); err != nil {
					return err
				}
				if err := tx.Save(b); err != nil {
					return err
				}
				moved = true
				return nil
			})
			if err != nil {
				return e.InternalServerError("transfer failed", err)
			}
			return e.JSON(http.StatusOK, map[string]any{"value": moved})
		})
		return se.Next()
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
