/** KPIs. */
import { notYet } from './not-yet';

export const reportSummaryRoute = notYet('reports');
